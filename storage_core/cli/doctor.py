"""``storage doctor``: check the configured store end to end, one timed line per step."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from storage_core.cli._args import Commands, add_command
from storage_core.cli._errors import EXIT_OK, CommandError, describe_unexpected
from storage_core.cli._output import note, one_line, out, scrub
from storage_core.cli._store import config_hint, config_source
from storage_core.config import StorageConfig, load_config
from storage_core.errors import StorageError
from storage_core.factory import build_backend, is_url, open_storage
from storage_core.redact import redact_url
from storage_core.storage import Storage

T = TypeVar("T")

_SCRATCH_TTL = 300  # seconds: the scratch key expires even if every delete fails


def register(commands: Commands) -> None:
    add_command(
        commands,
        "doctor",
        run,
        "Check the configured store: load the config, open it, ping it, then write, read and delete "
        f"a scratch key (storage-doctor:<uuid>, with a {_SCRATCH_TTL} s TTL as a safety net). "
        "Prints each step with its latency; exits 1 naming the step that failed.",
        examples=["storage doctor", "storage -c agent.yaml doctor"],
    )


def run(args: argparse.Namespace) -> int:
    source = config_source(args)
    checks = _Checks()
    target: str | StorageConfig
    if source is not None and is_url(source):
        target = checks.run("config", lambda: source, lambda url: f"URL {redact_url(url)}")
    else:
        # The backend's own section is checked here too (built, no I/O), so a mistake in it
        # fails this step rather than passing it and failing at open.
        target = checks.run("config", lambda: _checked_config(source), _describe_config)
    store = checks.run("open", lambda: open_storage(target), repr)
    with store:
        checks.run("ping", store.ping)
        key = f"storage-doctor:{uuid.uuid4()}"
        value = {"storage-doctor": key, "at": time.time()}
        try:
            checks.run("write", lambda: store.write(key, value, ttl=_SCRATCH_TTL), lambda _: f"key {key}")
            checks.run("read", lambda: _read_back(store, key, value), lambda _: "value matches")
            checks.run("delete", lambda: _delete_scratch(store, key), lambda _: "key removed")
        except BaseException:  # Ctrl-C too; and a write that raised may still have been applied
            _remove_scratch(store, key)
            raise
    out(f"ok: all {checks.passed} checks passed")
    return EXIT_OK


def _checked_config(source: str | None) -> StorageConfig:
    config = load_config(source)
    build_backend(config)
    return config


def _describe_config(config: StorageConfig) -> str:
    source = config.source
    if source == StorageConfig.source:
        source = "embedded default"
    namespace = config.namespace or "-"
    # Where the store is once relative paths are resolved, without opening it (e.g. local:/abs/state.db).
    where = repr(build_backend(config)).strip("<>").split(" ", 1)[-1]
    return f"{source} (backend {config.backend}, consistency {config.consistency}, namespace {namespace}) -> {where}"


def _read_back(store: Storage, key: str, expected: Any) -> None:
    if store.read(key) != expected:
        raise CommandError("read back a different value than was written")


def _delete_scratch(store: Storage, key: str) -> None:
    if not store.delete(key):
        raise CommandError("the scratch key was already gone")
    if store.exists(key):
        raise CommandError("the scratch key is still there after delete")


def _remove_scratch(store: Storage, key: str) -> None:
    """Best effort after a failed check: the doctor never leaves its key behind for long."""
    try:
        store.delete(key)
    except Exception as exc:
        note(f"warning: could not delete the scratch key {key} ({one_line(str(exc))}); it expires in {_SCRATCH_TTL} s")


class _Checks:
    """Runs the doctor's steps, printing one line each with its latency."""

    def __init__(self) -> None:
        self.passed = 0

    def run(self, step: str, action: Callable[[], T], describe: Callable[[T], str] | None = None) -> T:
        start = time.perf_counter()
        try:
            result = action()
        except (CommandError, StorageError) as exc:
            self._line(step, "FAIL", start)
            raise CommandError(f"doctor: {step} failed: {exc}{config_hint(exc)}") from exc
        except Exception as exc:
            self._line(step, "FAIL", start)
            raise CommandError(f"doctor: {step} failed: {describe_unexpected(exc)}", unexpected=True) from exc
        self._line(step, "ok", start, describe(result) if describe is not None else "")
        self.passed += 1
        return result

    @staticmethod
    def _line(step: str, status: str, start: float, detail: str = "") -> None:
        elapsed_ms = (time.perf_counter() - start) * 1000
        out(f"{step:<7} {status:<4} {elapsed_ms:9.2f} ms  {scrub(detail)}".rstrip())
