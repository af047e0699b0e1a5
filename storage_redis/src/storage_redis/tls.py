"""TLS connections that tell a handshake that went unanswered from a server that is down.

redis-py reports a TLS handshake that timed out as "Timeout connecting to server", the
same words as a TCP connect that timed out, so a ``rediss://`` URL pointed at a plain
Redis port was retried like a dead server (about 21 s with the defaults) and then blamed
on the network. Here the handshake runs after TCP has connected: a timeout there, from a
server no handshake of this pool has yet succeeded with, means it answers TCP but not
TLS, which retrying cannot change. Once one handshake has succeeded, a later timeout is
a stalled server (stopped, overloaded) and stays an ordinary, retried timeout.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from redis import exceptions as rx
from redis.connection import SSLConnection

__all__ = ["HandshakeRecord", "TLSConnection", "TLSHandshakeTimedOut"]


class TLSHandshakeTimedOut(rx.ConnectionError):
    """The server accepted the TCP connection, then never answered the TLS handshake."""


class HandshakeRecord:
    """Whether any connection of one pool has completed a TLS handshake; shared by its connections."""

    def __init__(self) -> None:
        self._done = threading.Event()

    @property
    def succeeded(self) -> bool:
        return self._done.is_set()

    def success(self) -> None:
        self._done.set()


class TLSConnection(SSLConnection):
    """redis-py's ``SSLConnection``, raising :class:`TLSHandshakeTimedOut` for a server that never spoke TLS."""

    def __init__(self, *, handshakes: HandshakeRecord | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handshakes = handshakes if handshakes is not None else HandshakeRecord()

    def _wrap_socket_with_ssl(self, sock: socket.socket) -> Any:
        try:
            wrapped = super()._wrap_socket_with_ssl(sock)  # type: ignore[no-untyped-call]
        except TimeoutError as exc:  # socket.timeout, raised as ours: redis-py would rename it
            if self._handshakes.succeeded:
                raise
            raise TLSHandshakeTimedOut(f"no answer to the TLS handshake from {self.host}:{self.port}") from exc
        self._handshakes.success()
        return wrapped
