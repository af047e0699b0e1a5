"""The ``storage`` command: look at and edit a store from a shell or a script.

stdout carries only data (values, keys, the backends table, the doctor's report) so it
can be piped; diagnostics go to stderr as one line, ``storage: error: ...``, and a
traceback only with ``--debug``. The store is opened with ``open_storage`` exactly as an
agent opens it, so the CLI sees what the agent sees.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any, NoReturn, TypeVar

import orjson

from storage_core.config import DEFAULT_CONFIG_FILE, StorageConfig, load_config
from storage_core.errors import KeyNotFound, StorageError
from storage_core.factory import is_url, open_storage
from storage_core.redact import redact_url
from storage_core.registry import available_backends
from storage_core.storage import Storage, check_key

__all__ = ["CONFIG_ENV", "main"]

CONFIG_ENV = "STORAGE_CONFIG"
"""Environment variable holding the default for ``-c/--config``."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # what argparse uses
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell shows for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `yes | head -1` shows for yes

_PROG = "storage"
_DOCTOR_TTL = 300  # seconds: the scratch key expires even if every delete fails
_DEBUG_HINT = "rerun with --debug to see the traceback"
# Anything shaped like a URL in a message is passed through redact_url before printing.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# orjson reads an integer beyond 64 bits as a float: a silent change we refuse.
_LONG_DIGITS = re.compile(r"\d{19}")
_INT_RANGE = (-(2**63), 2**64 - 1)

T = TypeVar("T")

_KEY_HELP = "a non-empty string, at most 1024 bytes of UTF-8"

_EPILOG = f"""\
config:
  -c/--config takes an agent.yaml file or a URL (local:///abs/path/state.db,
  redis://[user:pass@]host:port/db, ...). Without it: ${CONFIG_ENV} if set, else
  ./{DEFAULT_CONFIG_FILE} if present, else the embedded default (a local SQLite file).

output:
  stdout carries only data, so it can be piped; messages go to stderr.

exit status:
  0    success
  1    failure: a config, connection or data error, or the key was not found
       (get; delete without --missing-ok)
  2    usage error: bad arguments
  130  interrupted (Ctrl-C)
  141  stdout was closed early, e.g. piped into head
"""


class CommandError(Exception):
    """A failure reported as one line on stderr with exit status 1, no traceback."""

    def __init__(self, message: str, *, unexpected: bool = False) -> None:
        super().__init__(message)
        self.unexpected = unexpected


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script exits with it)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with _logging_to_stderr(args.debug):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        return _report(exc, debug=args.debug)
    return code


# -- the parser ---------------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Inspect and edit an agent's storage (the store agent.yaml configures).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (storage-core) {_version()}")
    _add_common_options(parser, top_level=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        _add_common_options(sub, top_level=False)
        sub.set_defaults(handler=handler)
        return sub

    command("backends", _cmd_backends, "List the installed backends: name, distribution, version, URL schemes.")

    command(
        "doctor",
        _cmd_doctor,
        "Check the configured store: load the config, open it, ping it, then write, read and delete "
        f"a scratch key (storage-doctor:<uuid>, with a {_DOCTOR_TTL} s TTL as a safety net). "
        "Prints each step with its latency; exits 1 naming the step that failed.",
    )

    get = command("get", _cmd_get, "Print the value of KEY as JSON; exit 1 if the key is absent.")
    get.add_argument("key", metavar="KEY", help=_KEY_HELP)
    get.add_argument("--pretty", action="store_true", help="indent the JSON (2 spaces)")

    put = command("put", _cmd_put, "Store a JSON value at KEY.")
    put.add_argument("key", metavar="KEY", help=_KEY_HELP)
    put.add_argument(
        "value",
        metavar="JSON",
        help="""the value as JSON, quoted for the shell: '{"a": 1}', '"text"', 42; - reads it from stdin. """
        "A value starting with - needs -- before it: put KEY -- -1.5e3",
    )
    put.add_argument("--ttl", type=_seconds, metavar="SECONDS", help="expire the key after this many seconds")
    _add_consistency_option(put)

    delete = command(
        "delete",
        _cmd_delete,
        "Delete KEY; say on stderr whether it was there. Exit 0 if it was, 1 if it was absent "
        "(like rm), or 0 either way with --missing-ok (like rm -f).",
    )
    delete.add_argument("key", metavar="KEY", help=_KEY_HELP)
    delete.add_argument("-f", "--missing-ok", action="store_true", help="exit 0 even when the key was absent")
    _add_consistency_option(delete)

    keys = command("keys", _cmd_keys, "Stream the keys that start with PREFIX (all keys without it), one per line.")
    keys.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    keys.add_argument("--limit", type=_count, metavar="N", help="stop after N keys")
    keys.add_argument(
        "--json", action="store_true", help="print each key as a JSON string (unambiguous when a key holds a newline)"
    )
    return parser


def _add_common_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """-c and --debug, accepted before and after the command.

    On a subcommand they default to SUPPRESS, so an option given before the command is
    not overwritten by the subcommand's default.
    """
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE|URL",
        type=_nonempty,
        default=None if top_level else argparse.SUPPRESS,
        help=f"agent.yaml or a store URL (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG_FILE}, "
        "else the embedded default)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="show log messages, and the traceback of an error",
    )


def _add_consistency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--consistency", choices=("strong", "eventual"), help="override the config's default for this write"
    )


def _nonempty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a config file path or a URL, got an empty string")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _version() -> str:
    try:
        return metadata.version("storage-core")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


# -- the commands -------------------------------------------------------------------------


def _cmd_backends(args: argparse.Namespace) -> int:
    backends = available_backends()
    if not backends:  # storage-core ships `local`, so this is a broken install
        raise CommandError("no storage backends are installed; reinstall storage-core")
    rows = [("NAME", "DISTRIBUTION", "VERSION", "URL SCHEMES")]
    rows += [
        (info.name, info.distribution, info.version, ", ".join(info.url_schemes) or "-")
        for info in sorted(backends.values(), key=lambda info: info.name)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        _out("  ".join([*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]))
    return EXIT_OK


def _cmd_get(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    with _open(args) as store:
        value = store.read(key)
    _out_utf8(orjson.dumps(value, option=orjson.OPT_INDENT_2 if args.pretty else 0))
    return EXIT_OK


def _cmd_put(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    value = _parse_json(sys.stdin.buffer.read() if args.value == "-" else args.value)
    with _open(args) as store:
        store.write(key, value, ttl=args.ttl, consistency=args.consistency)
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    with _open(args) as store:
        removed = store.delete(key, consistency=args.consistency)
    if removed:
        _note(f"deleted key {key!r}")
    elif args.missing_ok:
        _note(f"key {key!r} was not there")
    else:
        raise KeyNotFound(key)
    return EXIT_OK


def _cmd_keys(args: argparse.Namespace) -> int:
    with _open(args) as store:
        keys = store.keys(args.prefix)
        try:
            for key in itertools.islice(keys, args.limit):
                _out_utf8(orjson.dumps(key) if args.json else key.encode())
        finally:
            # Stop the backend's paging (and free its cursor) before the store closes.
            close = getattr(keys, "close", None)
            if callable(close):
                close()
    return EXIT_OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    source = _config_source(args)
    checks = _Checks()
    target: str | StorageConfig
    if source is not None and is_url(source):
        target = checks.run("config", lambda: source, lambda url: f"URL {redact_url(url)}")
    else:
        target = checks.run("config", lambda: load_config(source), _describe_config)
    store = checks.run("open", lambda: open_storage(target), repr)
    with store:
        checks.run("ping", store.ping)
        key = f"storage-doctor:{uuid.uuid4()}"
        value = {"storage-doctor": key, "at": time.time()}
        try:
            checks.run("write", lambda: store.write(key, value, ttl=_DOCTOR_TTL), lambda _: f"key {key}")
            checks.run("read", lambda: _read_back(store, key, value), lambda _: "value matches")
            checks.run("delete", lambda: _delete_scratch(store, key), lambda _: "key removed")
        except BaseException:  # Ctrl-C too; and a write that raised may still have been applied
            _remove_scratch(store, key)
            raise
    _out(f"ok: all {checks.passed} checks passed")
    return EXIT_OK


# -- helpers ------------------------------------------------------------------------------


def _config_source(args: argparse.Namespace) -> str | None:
    """-c, else $STORAGE_CONFIG, else None (./agent.yaml or the embedded default)."""
    config: str | None = args.config
    return config or os.environ.get(CONFIG_ENV) or None


def _open(args: argparse.Namespace) -> Storage:
    """The store the config names, initialized; callers close it with ``with``."""
    return open_storage(_config_source(args))


def _describe_config(config: StorageConfig) -> str:
    source = config.source
    if source == StorageConfig.source:
        source = "embedded default"
    namespace = config.namespace or "-"
    return f"{source} (backend {config.backend}, consistency {config.consistency}, namespace {namespace})"


def _parse_json(text: str | bytes) -> Any:
    """Parse the value of ``put``; refuse what JSON cannot hold or orjson would change."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"the value is not valid JSON ({exc}){_advice(text)}") from None
    if _LONG_DIGITS.search(text if isinstance(text, str) else text.decode("utf-8")):
        json.loads(text, parse_int=_check_int)  # only to find an integer orjson widened to a float
    return value


class _Advice(Exception):
    """What to do about a value orjson refused, raised from inside ``json.loads``."""


def _advice(text: str | bytes) -> str:
    """Advice on a value orjson refused, from a second opinion: the stdlib parser's.

    Only a syntax error gets the hint about shell quoting. A value refused for something
    quoting cannot fix (nested too deep, not UTF-8) is left to orjson's own message.
    """
    try:
        json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except _Advice as advice:
        return f"; {advice}"
    except json.JSONDecodeError:
        return """; quote it for the shell, e.g. '{"a": 1}', or '"text"' for a string"""
    except (ValueError, RecursionError):  # not UTF-8, or nested deeper than the stdlib parser goes
        pass
    return ""


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _Advice(f"number out of range for JSON (a 64-bit float): {literal:.30}; store it as a string")
    return value


def _no_constant(word: str) -> NoReturn:
    raise _Advice("NaN and Infinity are not JSON values")


def _check_int(literal: str) -> int:
    digits = literal.lstrip("-")
    if len(digits) <= 21 and _INT_RANGE[0] <= int(literal) <= _INT_RANGE[1]:
        return 0
    raise CommandError(
        f"the integer {literal:.30} does not fit in 64 bits and would be stored inexactly; store it as a string"
    )


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
        _note(f"warning: could not delete the scratch key {key} ({_one_line(str(exc))}); it expires in {_DOCTOR_TTL} s")


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
            raise CommandError(f"doctor: {step} failed: {exc}") from exc
        except Exception as exc:
            self._line(step, "FAIL", start)
            raise CommandError(f"doctor: {step} failed: {_unexpected(exc)}", unexpected=True) from exc
        self._line(step, "ok", start, describe(result) if describe is not None else "")
        self.passed += 1
        return result

    @staticmethod
    def _line(step: str, status: str, start: float, detail: str = "") -> None:
        elapsed_ms = (time.perf_counter() - start) * 1000
        _out(f"{step:<7} {status:<4} {elapsed_ms:9.2f} ms  {_scrub(detail)}".rstrip())


def _out(line: str) -> None:
    """One line of data on stdout."""
    sys.stdout.write(line + "\n")


def _out_utf8(data: bytes) -> None:
    """One line of data on stdout as UTF-8 whatever the locale, as JSON consumers expect."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # stdout replaced by a text-only stream
        sys.stdout.write(data.decode() + "\n")
    else:
        buffer.write(data + b"\n")


def _note(message: str) -> None:
    """One line of diagnostics on stderr."""
    sys.stderr.write(f"{_PROG}: {_scrub(message)}\n")


def _report(exc: Exception, *, debug: bool) -> int:
    """Print *exc* as one line (after its traceback with --debug); return the exit status."""
    if isinstance(exc, CommandError):
        message, unexpected = str(exc), exc.unexpected
    elif isinstance(exc, StorageError):  # its message says what failed and what to do
        message, unexpected = str(exc), False
    else:
        message, unexpected = _unexpected(exc), True
    if debug:
        sys.stderr.write(_scrub("".join(traceback.format_exception(exc))))
    elif unexpected:
        message = f"{message} ({_DEBUG_HINT})"
    sys.stderr.write(f"{_PROG}: error: {_scrub(_one_line(message))}\n")
    return EXIT_ERROR


def _unexpected(exc: BaseException) -> str:
    return f"unexpected {type(exc).__name__}: {exc}"


def _one_line(text: str) -> str:
    return _NEWLINES.sub(" ", text.strip())


def _scrub(text: str) -> str:
    """*text* with the password of every URL in it replaced by ``***``."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # no real file behind stdout: nothing to do
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


@contextlib.contextmanager
def _logging_to_stderr(debug: bool) -> Iterator[None]:
    """With --debug, every log record goes to stderr; without it, none.

    Without it the error line already says what failed: a backend's log line about the
    same failure would only repeat it. A handler on the root logger (even a null one)
    also keeps Python's last-resort handler from printing records unformatted.
    """
    root = logging.getLogger()
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.NullHandler()
    previous = root.level
    root.addHandler(handler)
    if debug:
        root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{_PROG}: {_scrub(super().format(record))}"


if __name__ == "__main__":  # pragma: no cover - `python -m storage_core.cli`, same as the console script
    sys.exit(main())
