"""A PostgreSQL server of a run's own, to crash and restore at will: `initdb` into a temporary
folder, `pg_ctl` on a port of its own, removed afterwards. Never the shared server: a benchmark
that sends SIGKILL to a postmaster, or a test that restores a backup over a data directory, must
own that server.

PostgreSQL refuses to run as root, so under root (a container) its programs run as the
`postgres` system user, who owns the folder.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

HOST = "127.0.0.1"


def bin_dir() -> Path:
    """PG_BIN if set, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout), else
    the folder of `pg_ctl` on the PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise SystemExit("pg_ctl not found: install PostgreSQL's server, or set PG_BIN")
    return Path(pg_ctl).parent


def available() -> bool:
    """Whether PostgreSQL's server programs are installed here (a CI runner may have only the
    client, its server in a container)."""
    try:
        return (bin_dir() / "initdb").exists()
    except SystemExit:
        return False


def _running(pid: int) -> bool:
    """Whether the process is alive. A process nobody reaps (its parent gone, and a container's
    first process that reaps no orphan) stays a zombie: dead all the same."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


class Cluster:
    """One server: `init()`, `start()`, then `kill()` as a crash would and `start()` again, or
    `stop()`. Used as a context manager, it is stopped and its folder removed on the way out."""

    def __init__(self, port: int, *, archive: bool = False, settings: dict[str, str] | None = None):
        """With `archive`, every completed write-ahead log segment is copied to `self.archive`
        (archive_command), as docs/BACKUPS.md sets up, for a point-in-time recovery."""
        self.port = port
        self.settings = settings or {}
        self.bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="aidwallet-pg-"))
        self.data = self.root / "data"
        self.archive = self.root / "archive"
        self.log_path = self.root / "server.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        self._own(self.root)
        if archive:
            self.archive.mkdir()
            self._own(self.archive)
            self.settings = {
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": f"'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'",
            } | self.settings

    def _own(self, path: Path) -> None:
        if self.user:
            owner = pwd.getpwnam(self.user)
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """One of PostgreSQL's programs, as the cluster's owner."""
        return subprocess.run(
            [str(self.bin / program), *args],
            cwd=self.root,
            user=self.user,
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def init(self) -> None:
        self.run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
        )  # fmt: skip
        self.configure(
            {
                "listen_addresses": f"'{HOST}'",
                "port": str(self.port),
                "unix_socket_directories": f"'{self.root}'",
                "max_connections": "100",
                "shared_buffers": "64MB",
                # Durability as in production: the crash is the point.
                "fsync": "on",
                "synchronous_commit": "on",
                # After a crash, one syncfs() of the file system instead of an fsync() of every
                # file of the data folder before replaying the log: 0.2 s instead of 3.6 s here
                # (docs/BACKUPS.md recommends it in production too).
                "recovery_init_sync_method": "syncfs",
            }
            | self.settings
        )

    def configure(self, settings: dict[str, str]) -> None:
        """Settings appended to postgresql.conf: the last one of a name wins."""
        with open(self.data / "postgresql.conf", "a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self, *, timeout: float = 60) -> float:
        """Start the server and wait until it accepts connections; returns the seconds it took.
        After a crash, the orphans of the killed postmaster may hold its shared memory a moment
        ("pre-existing shared memory block is still in use"): started again until they left."""
        began = time.monotonic()
        deadline = began + timeout
        while True:
            result = self.run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t",
                f"{max(1, int(deadline - time.monotonic()))}", "start", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return time.monotonic() - began
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def kill(self) -> int:
        """SIGKILL to the postmaster, as a crash would (the out-of-memory killer, say); returns
        its pid once it is gone. Its backends notice and exit on their own; the next start
        replays the write-ahead log."""
        pid = self.postmaster_pid()
        if pid is None or not _running(pid):
            raise RuntimeError("no postmaster to kill")
        os.kill(pid, signal.SIGKILL)
        while _running(pid):
            time.sleep(0.01)
        return pid

    def stop(self) -> None:
        """A fast shutdown; an immediate one if that fails. Nothing to do if it is not
        running."""
        pid = self.postmaster_pid()
        if pid is None or not _running(pid):
            return
        stopped = self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        if stopped.returncode != 0:
            with contextlib.suppress(subprocess.SubprocessError):
                self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def archive_now(self) -> str:
        """Close the current write-ahead log segment and wait until it is archived; returns its
        name. What was committed so far can then be recovered from the archive."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
                if last is not None and last >= segment:  # names sort in the log's order
                    return segment
                time.sleep(0.1)
        raise RuntimeError(f"segment {segment} not archived within 60 s:\n{self.log_tail()}")

    def recover(self, base: Path, *, target_time: datetime) -> float:
        """A point-in-time recovery: the data folder replaced by the base backup `base`, the
        archived log replayed up to `target_time`, then the server promoted to take writes.
        Returns the seconds from the start until it took writes."""
        import psycopg

        self.stop()
        shutil.rmtree(self.data)
        subprocess.run(["cp", "-a", str(base), str(self.data)], user=self.user, check=True)
        self.configure(
            {
                "restore_command": f"'cp {self.archive}/%f %p'",
                "recovery_target_time": f"'{target_time.isoformat()}'",
                "recovery_target_action": "'promote'",
            }
        )
        signal_file = self.data / "recovery.signal"
        signal_file.touch()
        self._own(signal_file)
        began = time.monotonic()
        self.start()
        deadline = began + 120
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            while conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"still recovering after 120 s:\n{self.log_tail()}")
                time.sleep(0.1)
        return time.monotonic() - began

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""
