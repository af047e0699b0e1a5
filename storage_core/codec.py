"""JSON encoding that refuses, before any I/O, every value it could not store exactly.

orjson alone turns NaN into ``null``, a tuple into a list and a UUID into a string: each
is a silent change of data. We let orjson find what it rejects itself (non-str keys,
ints beyond 64 bits, cycles, unknown objects) and walk the value once for the rest.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any

import orjson

from storage_core.errors import SerializationError

__all__ = ["decode", "decode_found", "encode"]

# Passthrough makes orjson hand these to ``default`` (which refuses) instead of
# converting them to something that reads back as a different type.
_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LEAVES = frozenset({str, bool, int, type(None)})
_isfinite = math.isfinite
_loads = orjson.loads


# What to store instead, by the type's name (an Enum member gets its own hint).
_HINTS = {
    "tuple": "use a list",
    "set": "use a list",
    "frozenset": "use a list",
    "bytes": "store text, such as base64",
    "bytearray": "store text, such as base64",
    "datetime": "store value.isoformat()",
    "date": "store value.isoformat()",
    "time": "store value.isoformat()",
    "UUID": "store str(value)",
    "Decimal": "store a str, or a float if rounding is fine",
    "float": "store None or a str",
}
# orjson's own refusals, said in our words with what to do.
_ORJSON_REFUSALS = {
    "Integer exceeds 64-bit range": "an int beyond 64 bits (store it as a str)",
    "Dict key must be str": "a dict key that is not a str (convert the keys to str)",
    "Recursion limit reached": "it nests deeper than 254 levels, or contains itself",
}


_UNSUPPORTED = "Type is not JSON serializable: "  # orjson's words, whatever ``default`` raised


def _hint(kind: type) -> str:
    if isinstance(kind, enum.EnumMeta):
        return "store its .value"
    return _hint_by_name(kind.__name__)


def _hint_by_name(name: str) -> str:
    return _HINTS.get(name, "convert it to dict, list, str, int, float, bool or None")


def _refuse(obj: object) -> Any:
    raise TypeError(type(obj).__name__)


def _explain(orjson_message: str) -> str:
    if orjson_message.startswith(_UNSUPPORTED):
        name = orjson_message.removeprefix(_UNSUPPORTED)
        return f"a {name} ({_hint_by_name(name.rpartition('.')[2])})"
    return _ORJSON_REFUSALS.get(orjson_message, orjson_message)


def encode(value: object, key: str | None = None) -> bytes:
    """Return the JSON bytes of *value* (the value of *key*, which errors then name).

    Raises:
        SerializationError: the value is not exactly representable as JSON.
    """
    try:
        data = orjson.dumps(value, default=_refuse, option=_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise _refusal(key, _explain(str(exc))) from None
    if not _is_exact(value):
        raise _refusal(key, _describe_inexact(value))
    return data


def _refusal(key: str | None, problem: str) -> SerializationError:
    subject = "the value" if key is None else f"the value for key {key!r:.80}"
    return SerializationError(f"{subject} cannot be stored as JSON exactly: it holds {problem}")


def decode(data: bytes, key: str) -> Any:
    """Parse stored bytes; a corrupt or foreign value names its key."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(
            f"the value stored at key {key!r} is not valid JSON ({exc}); "
            "it was not written through storage-core: overwrite or delete it"
        ) from None


def decode_found(keys: Sequence[str], found: Sequence[bytes | None]) -> dict[str, Any]:
    """Decode what a bulk read found (None: absent), keyed by *keys*; a bad value names its key.

    The common case calls orjson directly per value: a wrapper per value was a fifth of a
    100-key ``read_many`` on a warm server.
    """
    try:
        return {k: _loads(data) for k, data in zip(keys, found, strict=True) if data is not None}
    except orjson.JSONDecodeError:
        return {k: decode(data, k) for k, data in zip(keys, found, strict=True) if data is not None}


def _is_exact(value: Any) -> bool:
    """True when JSON reads *value* back unchanged; the hot path, so leaves are checked inline.

    Only called after orjson succeeded, so the value is acyclic and at most 255 levels
    deep: the recursion is bounded.
    """
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    elif kind is float:
        return _isfinite(value)
    else:
        return kind in _LEAVES
    for item in items:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not _isfinite(item):
                return False
        elif not _is_exact(item):
            return False
    return True


def _describe_inexact(value: object) -> str:
    """Name the first part that would not read back the same (the slow, failing path)."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        item, path = stack.pop()
        kind = type(item)
        if kind is float and not math.isfinite(item):
            return f"{item!r} at {path}, which JSON cannot represent ({_hint(float)})"
        if kind is dict:
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        elif kind is list:
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
        elif kind not in _LEAVES and kind is not float:
            return f"a {kind.__name__} at {path}, which would read back as another type ({_hint(kind)})"
    raise AssertionError("unreachable: _is_exact found a problem")  # pragma: no cover
