"""Reading a JSON value typed by a user: refuse what JSON cannot hold or orjson would change."""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

import orjson

from storage_core.cli._errors import CommandError

# orjson reads an integer beyond 64 bits as a float: a silent change we refuse.
_LONG_DIGITS = re.compile(r"\d{19}")
_INT_RANGE = (-(2**63), 2**64 - 1)


def parse_json(text: str | bytes) -> Any:
    """Parse a value given on the command line or stdin."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"the value is not valid JSON ({exc}){_advice(text)}") from None
    check_exact_ints(text)
    if isinstance(value, dict | list):
        check_unique_keys(text)
    return value


def check_unique_keys(text: str | bytes) -> None:
    """Raise ``CommandError`` naming a key given twice in one object (JSON parsers keep the last, silently)."""
    json.loads(text, object_pairs_hook=_unique)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise CommandError(f"the key {key!r} is given twice in one JSON object; keep one")
        found[key] = value
    return found


def check_exact_ints(text: str | bytes) -> None:
    """Raise ``CommandError`` if *text* holds an integer orjson would widen to an inexact float."""
    if _LONG_DIGITS.search(text if isinstance(text, str) else text.decode("utf-8")):
        json.loads(text, parse_int=_check_int)


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
