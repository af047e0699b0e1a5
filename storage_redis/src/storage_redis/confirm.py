"""Confirming a STRONG write with WAIT/WAITAOF, and telling a lost reply from a conflict.

``WAIT`` covers only the writes sent on its own connection, and blocks only outside
``MULTI`` (see REDIS-NOTES), so a confirmed write holds one pooled connection for both
commands. Whatever happens to the ``WAIT``, the write before it is applied: a failed or
short confirmation is a :class:`ConsistencyError`, never a retry.

A conditional write whose reply was lost may have been applied; its retry must count
finding its own bytes as success (:class:`LostReply`), and a retry that finds neither the
expected version nor its bytes cannot know the outcome (:class:`OutcomeUnknown`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rx

from storage_core.backend import Consistency, ConsistencyError
from storage_redis.config import RedisConfig
from storage_redis.errors import MessageContext, OutcomeUnknown, maybe_applied
from storage_redis.scripts import Script
from storage_redis.topology import Client, Connection

__all__ = ["Confirmation", "LostReply", "execute_loading"]


def execute_loading(execute: Callable[..., Any], args: Sequence[Any], script: Script | None) -> Any:
    """``execute(*args)``, loading *script* first if the server has forgotten it (restarted, flushed)."""
    if script is None:
        return execute(*args)
    try:
        return execute(*args)
    except rx.NoScriptError:
        execute("SCRIPT", "LOAD", script.source)
        return execute(*args)


def _on_connection(connection: Connection) -> Callable[..., Any]:
    """Run a command on this very connection: send it, read its reply."""

    def execute(*args: Any) -> Any:
        connection.send_command(*args)
        return connection.read_response()

    return execute


def _read_acks(connection: Connection) -> Any:
    """The reply to the WAIT sent on *connection*, or the error in its place.

    Returned, not raised: the write before the WAIT is applied either way, so it must be
    reported as unconfirmed, never retried.
    """
    try:
        return connection.read_response()
    except Exception as exc:
        if not isinstance(exc, rx.ResponseError):
            connection.disconnect()  # a reply may be half read: this socket must not be reused
        return exc


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What a STRONG write waits for: ``WAIT``, ``WAITAOF`` or nothing (*command* empty)."""

    command: tuple[Any, ...]
    replicas: int
    aof: bool
    timeout_ms: int

    @classmethod
    def of(cls, config: RedisConfig) -> Confirmation:
        command: tuple[Any, ...] = ()
        if config.wait_aof:
            command = ("WAITAOF", 1, config.wait_replicas, config.wait_timeout_ms)
        elif config.wait_replicas:
            command = ("WAIT", config.wait_replicas, config.wait_timeout_ms)
        return cls(command, config.wait_replicas, config.wait_aof, config.wait_timeout_ms)

    def needed(self, consistency: Consistency) -> bool:
        """Whether a write at *consistency* waits at all; an EVENTUAL one never does."""
        return bool(self.command) and consistency is Consistency.STRONG

    def send(
        self, client: Client, args: Sequence[Any], *, wait: bool, script: Script | None, conditional: bool
    ) -> tuple[Any, Any]:
        """One attempt: the write's reply, and the reply of the WAIT that followed it (None if none did).

        A write that always writes when it succeeds (SET, MSET) goes with its WAIT in one
        round trip; a *conditional* one, or a script that may meet NOSCRIPT, is sent
        first, and WAIT follows only if it changed something: a lost race waits for nothing.
        """
        if not wait:
            return execute_loading(client.execute_command, args, script), None
        pool = client.connection_pool
        connection = pool.get_connection()
        try:
            if script is None and not conditional:
                connection.send_packed_command(connection.pack_commands([args, self.command]))
                try:
                    result = connection.read_response()
                except rx.ResponseError:
                    _read_acks(connection)  # read past the WAIT's reply, to keep the connection in step
                    raise
                return result, _read_acks(connection)
            result = execute_loading(_on_connection(connection), args, script)
            if not result:
                return result, None
            connection.send_command(*self.command)
            return result, _read_acks(connection)
        except rx.ResponseError:
            raise  # a whole reply was read: the connection is in step
        except BaseException:
            connection.disconnect()  # a reply may be half read: this socket must not be reused
            raise
        finally:
            pool.release(connection)

    def check(self, acks: Any, key: str | None, context: MessageContext) -> None:
        """Raise ConsistencyError when WAIT/WAITAOF failed or counted fewer acknowledgements than asked."""
        what = f"the write to key {key!r}" if key is not None else "the batch write"
        applied = f"{what} is applied on the primary ({context.server}) and will not be rolled back, but"
        if isinstance(acks, Exception):
            raise ConsistencyError(
                f"{applied} not confirmed: {self.command[0]} failed ({type(acks).__name__}: "
                f"{context.scrub(str(acks))}); check the replicas (INFO replication) and, with wait_aof, that "
                "the server still runs with appendonly yes (INFO persistence)"
            ) from acks
        local, replicas = acks if self.aof else (1, acks)
        missing = []
        if local < 1:
            missing.append("the primary did not confirm its AOF fsync")
        if replicas < self.replicas:
            missing.append(f"only {replicas} of {self.replicas} replicas acknowledged it")
        if not missing:
            return
        raise ConsistencyError(
            f"{applied} {' and '.join(missing)} within {self.timeout_ms} ms; check the replicas "
            "(INFO replication) and the server's disk, or lower wait_replicas/raise wait_timeout_ms"
        )


class LostReply:
    """Whether an earlier attempt of one conditional write may have been applied, its reply lost."""

    def __init__(self) -> None:
        self.possible = False

    def note(self, exc: BaseException) -> None:
        """Remember that the attempt that raised *exc* may have reached the server."""
        self.possible = self.possible or maybe_applied(exc)

    @property
    def flag(self) -> str:
        """The script's argument: "1" lets it count finding our own bytes as success."""
        return "1" if self.possible else "0"

    def unknown(self, key: str, context: MessageContext) -> OutcomeUnknown:
        """The error for a retry that found neither the expected version nor our bytes.

        Our write was never applied, or applied and then overwritten; a plain conflict
        would make ``update()`` run its function again, perhaps applying it twice.
        """
        return OutcomeUnknown(
            f"the connection to Redis at {context.server} broke after the conditional write to key {key!r} was "
            "sent, and the key has changed since: the write may or may not have been applied; read the key "
            "before retrying"
        )
