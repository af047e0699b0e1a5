"""The JSON Lines format of export and import: one ``{"key": ..., "value": ..., "ttl": ...}`` per line.

``ttl`` is the seconds the key had left when it was read (null: no expiry); an import
starts that many seconds afresh. A line is checked completely (JSON, fields, key, ttl,
value) before anything is written for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from storage_core.cli._errors import CommandError
from storage_core.cli._json import check_exact_ints
from storage_core.codec import encode
from storage_core.storage import check_key, check_ttl
from storage_core.suggest import did_you_mean

_FIELDS = ("key", "value", "ttl")
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Record:
    """One key of a store, as a line of an export holds it."""

    key: str
    value: Any
    ttl: float | None


class BadRecord(ValueError):
    """What is wrong with a line, in words for the person who wrote the file."""


def dump(key: str, value: Any, ttl: float | None) -> bytes:
    """The line (newline included) for one key."""
    return orjson.dumps({"key": key, "value": value, "ttl": ttl}) + b"\n"


def parse(line: bytes) -> Record:
    """The record on *line*, checked as a write would check it.

    Raises:
        BadRecord: saying what is wrong.
    """
    try:
        fields = orjson.loads(line)
        check_exact_ints(line)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"not valid JSON ({exc})") from None
    except CommandError as exc:
        raise BadRecord(str(exc)) from None
    if not isinstance(fields, dict):
        kind = "null" if fields is None else _JSON_TYPES[type(fields)]
        raise BadRecord(f'expected an object {{"key": ..., "value": ..., "ttl": ...}}, got a JSON {kind}')
    for name in fields:
        if name not in _FIELDS:
            raise BadRecord(f"unknown field {name!r}{did_you_mean(name, _FIELDS)}; a record has key, value and ttl")
    for name in ("key", "value"):
        if name not in fields:
            raise BadRecord(f"the field {name!r} is missing")
    try:
        key = check_key(fields["key"])
        ttl = check_ttl(fields.get("ttl"))
        encode(fields["value"], key)
    except ValueError as exc:  # InvalidKey and SerializationError are ValueErrors too
        raise BadRecord(str(exc)) from None
    return Record(key, fields["value"], ttl)
