"""HTTP requests to addresses that someone else chose: merchants' webhook URLs, the push
endpoints browsers hand us. Whoever chose the address must not be able to make the platform
reach anything else, nor hold a worker for long:

- no proxy, CA bundle or .netrc credentials from the environment (`trust_env = False`);
- no redirect followed, whatever the caller asks;
- a timeout to connect, one between bytes of the answer, and a deadline for the whole exchange
  (an answer dripped one byte at a time never times out between bytes): at the deadline the
  connection is shut and the request raises DeadlineExceeded;
- optionally, the connection made to an address resolved and checked beforehand (`address`),
  while the Host header, TLS SNI and certificate verification stay on the URL's host name: a
  DNS answer that changes between the check and the connection (rebinding) changes nothing.

One session makes one request: the deadline starts with it."""

import contextlib
import functools
import socket
import threading
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from requests.models import Response
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolKey
from urllib3.util import connection as urllib3_connection


class DeadlineExceeded(requests.Timeout):
    """The whole exchange took longer than the session's deadline."""


class _Deadline:
    """Shuts down the sockets of its connections when the time is up, which wakes a read
    blocked on them."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.connections: list[HTTPConnection] = []
        self.expired = False
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        for connection in list(self.connections):
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # closed meanwhile
                    sock.shutdown(socket.SHUT_RDWR)


class _Connection(HTTPConnection):
    """A connection that its deadline can shut, made to `address` when one is given. The two
    arrive as connection keywords, which the pool passes on from the manager's pool keywords."""

    def __init__(self, *args: Any, deadline: _Deadline, address: str | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._address = address
        deadline.connections.append(self)

    def _new_conn(self) -> socket.socket:
        if self._address is None:
            return super()._new_conn()
        # As urllib3 does, but to the address checked instead of a new DNS answer.
        try:
            return urllib3_connection.create_connection(
                (self._address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class _HTTPSConnection(_Connection, HTTPSConnection):
    """The same over TLS: HTTPSConnection wraps the socket that `_new_conn` gives, with SNI and
    the certificate's check on the URL's host name."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


# The connection keywords above, which urllib3's pool key does not know.
_CONNECTION_KWARGS = frozenset({"deadline", "address"})


def _pool_key(key_fn: Callable[[dict[str, Any]], PoolKey], context: dict[str, Any]) -> PoolKey:
    # A manager serves one session, which has one deadline and one address: they need no place
    # in the key that tells its pools apart.
    return key_fn({key: value for key, value in context.items() if key not in _CONNECTION_KWARGS})


class _Adapter(HTTPAdapter):
    def __init__(self, deadline: _Deadline, address: str | None):
        self._deadline = deadline
        self._address = address
        super().__init__(max_retries=0)

    def init_poolmanager(
        self,
        connections: int,
        maxsize: int,
        block: bool = DEFAULT_POOLBLOCK,
        **pool_kwargs: Any,
    ) -> None:
        super().init_poolmanager(
            connections,
            maxsize,
            block,
            deadline=self._deadline,
            address=self._address,
            **pool_kwargs,
        )
        manager = self.poolmanager
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        manager.key_fn_by_scheme = {
            scheme: functools.partial(_pool_key, key_fn)
            for scheme, key_fn in manager.key_fn_by_scheme.items()
        }


class OutboundSession(requests.Session):
    """A requests session for one request to an address someone else chose (see above).
    `deadline` is in seconds; `address`, an IP address already checked, is where to connect."""

    def __init__(self, *, deadline: float, address: str | None = None):
        super().__init__()
        self.trust_env = False
        self._deadline = _Deadline(deadline)
        adapter = _Adapter(self._deadline, address)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Response:
        kwargs["allow_redirects"] = False
        self._deadline.start()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            if self._deadline.expired:
                raise self._exceeded() from exc
            raise
        # A socket shut at the deadline may read as the end of a complete answer.
        if self._deadline.expired:
            response.close()
            raise self._exceeded()
        return response

    def _exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"No complete answer within {self._deadline.seconds} s.")

    def close(self) -> None:
        self._deadline.cancel()
        super().close()
