"""The read replica, proven on a real one: a PostgreSQL primary of the test's own (initdb, on a
free port) holding a copy of the test database, a streaming replica of it made with
`pg_basebackup -R`, and replica_scenario.py run against the pair in a process of its own (its
DATABASE_URL and DATABASE_REPLICA_URL name them). A pair of its own, because the shared server
need not accept replication connections and its settings are not the test's to change.

The router's choices without a replica, and under the tests' mirror, are tested beside."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, transaction

from core.replica import REPLICA, ReplicaRouter, replica_reads
from tests.markers import postgresql_only
from wallet.models import Beneficiary

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "pg_dump", "psql")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root (a container), the clusters run as postgres.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


class Pair:
    """A primary and its streaming replica under one temporary directory."""

    def __init__(self, base: Path):
        self.base = base
        self.primary = base / "primary"
        self.replica = base / "replica"
        self.primary_port = _free_port()
        self.replica_port = _free_port()
        self.started: list[Path] = []
        self.timings: list[str] = []

    def url(self, port: int) -> str:
        return f"postgres://postgres@127.0.0.1:{port}/aidwallet"

    def start(self, data: Path, port: int) -> None:
        options = f"-p {port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = ["pg_ctl", "-D", str(data), "-w", "-l", f"{data}.log", "-o", options, "start"]
        self.step(f"start {data.name}", _as_server_user(command))
        self.started.append(data)

    def stop(self) -> None:
        for data in reversed(self.started):
            subprocess.run(
                _as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
            )

    def step(self, name: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = _run(command, **kwargs)
        self.timings.append(f"{name} {time.monotonic() - started:.1f} s")
        return result

    def build(self, source: dict) -> None:
        """The primary, the test database copied into it as `aidwallet`, then the replica."""
        initdb = ["initdb", "-D", str(self.primary), "-U", "postgres", "--auth=trust", "--no-sync"]
        self.step("initdb", _as_server_user(initdb))
        self.start(self.primary, self.primary_port)
        admin = f"postgres://postgres@127.0.0.1:{self.primary_port}/postgres"
        self.step("create", ["psql", admin, "-qc", "CREATE DATABASE aidwallet"])
        host, port = source["HOST"] or "127.0.0.1", str(source["PORT"] or 5432)
        user, name = source["USER"] or "postgres", source["NAME"]
        dump = self.step(
            "pg_dump",
            ["pg_dump", "--no-owner", "-h", host, "-p", port, "-U", user, name],
            env=os.environ | {"PGPASSWORD": source["PASSWORD"] or ""},
        ).stdout
        restore = ["psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(self.primary_port)]
        self.step("restore", restore, input=dump)
        # initdb's pg_hba.conf lets 127.0.0.1 replicate; -R writes the standby's settings.
        backup = ["pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port)]
        backup += [
            "-U",
            "postgres",
            "-D",
            str(self.replica),
            "-R",
            "-X",
            "stream",
            "--no-sync",
            "-c",
            "fast",
        ]
        self.step("pg_basebackup", _as_server_user(backup))
        self.start(self.replica, self.replica_port)


@pytest.fixture
def replica_pair():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the PostgreSQL server tools are needed: {', '.join(missing)} not found")
    base = Path(tempfile.mkdtemp(prefix="aidwallet-replica-", dir="/tmp"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    pair = Pair(base)
    try:
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(base, ignore_errors=True)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_reports_read_the_replica_and_a_lagging_one_never_serves_a_fresh_read(replica_pair):
    replica_pair.build(connection.settings_dict)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("replica_scenario.py"))],
        cwd=ROOT,
        env=os.environ
        | {
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": replica_pair.url(replica_pair.primary_port),
            "DATABASE_REPLICA_URL": replica_pair.url(replica_pair.replica_port),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    replica_pair.timings.append(f"scenario {result.stdout.strip()[-200:]}")
    # The steps' times are printed on failure; none is asserted: a test's speed on a shared
    # machine proves nothing (a CI run under load once took 65 s).
    assert result.returncode == 0, [result.stdout + result.stderr, *replica_pair.timings]
    assert "every check holds" in result.stdout, replica_pair.timings


# --- the router, without a replica of its own -----------------------------------------------------


def test_without_a_replica_every_read_is_the_primarys():
    router = ReplicaRouter()
    with replica_reads():
        assert router.db_for_read(Beneficiary) == DEFAULT_DB_ALIAS
    assert router.db_for_read(Beneficiary) == DEFAULT_DB_ALIAS


def test_with_a_replica_only_the_reads_of_a_block_go_there(settings, monkeypatch):
    monkeypatch.setattr("core.replica.replica_configured", lambda: True)
    router = ReplicaRouter()
    assert router.db_for_read(Beneficiary) == DEFAULT_DB_ALIAS
    with replica_reads():
        assert router.db_for_read(Beneficiary) == REPLICA
        # Saving an object read from the replica goes to the primary.
        assert router.db_for_write(Beneficiary, instance=Beneficiary()) == DEFAULT_DB_ALIAS
        # After the block's first write, its reads are the primary's.
        assert router.db_for_read(Beneficiary) == DEFAULT_DB_ALIAS
    with replica_reads():
        assert router.db_for_read(Beneficiary) == REPLICA
    assert router.allow_migrate(REPLICA, "wallet") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "wallet") is True


@pytest.mark.django_db
def test_inside_a_transaction_a_block_reads_the_primary(monkeypatch):
    monkeypatch.setattr("core.replica.replica_configured", lambda: True)
    router = ReplicaRouter()
    with replica_reads(), transaction.atomic():
        assert router.db_for_read(Beneficiary) == DEFAULT_DB_ALIAS
