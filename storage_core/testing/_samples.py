"""The data the contract is checked with: values, keys and levels, each with a readable id."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from storage_core.consistency import Consistency


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = {f"level{i}": [value, i, None]}
    return value


# Every JSON type and its edges; each must read back equal *and* of the same type.
VALUES: dict[str, Any] = {
    "dict": {"a": 1, "b": [1, 2], "c": {"d": None}},
    "list": [1, "two", 3.5, True, None],
    "str": "hello",
    "str-empty": "",
    "str-unicode": "héllo wörld ñ 中文 עברית العربية",
    "str-emoji": "😀👍🏽👨‍👩‍👧 🏳️‍🌈",
    "str-nul": "a\x00b",
    "str-control": "\t\n\r\x1b\x7f\u2028\u2029",
    "str-quotes": "\"\\'/</script>",
    "str-long": "long " * 20_000,
    "str-json-looking": '{"a": 1}',
    "int-zero": 0,
    "int-negative": -42,
    "int-2**53+1": 2**53 + 1,
    "int-max-i64": 2**63 - 1,
    "int-min-i64": -(2**63),
    "int-max-u64": 2**64 - 1,
    "float-0.1": 0.1,
    "float-negative-zero": -0.0,
    "float-integral": 1.0,
    "float-1e308": 1e308,
    "float-max": 1.7976931348623157e308,
    "float-min-subnormal": 5e-324,
    "float-negative": -2.5e-10,
    "true": True,
    "false": False,
    "null": None,
    "nested": _nested(30),
    "empty-dict": {},
    "empty-list": [],
    "empties": [{}, [], "", {"a": {}}, [[]]],
    "dict-odd-keys": {"ключ": 1, "😀": 2, "": 3, "a.b": 4, "$x": 5, "a\x00b": 6},
    "mixed-numbers": [1, 1.0, True, 0, 0.0, False, -0.0, None],
}

LARGE_VALUE: dict[str, Any] = {"blob": "x" * 1_000_000, "items": list(range(10_000))}

# Values JSON cannot hold exactly: refused with SerializationError, before any I/O.
INVALID_VALUES: dict[str, Any] = {
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "nested-nan": {"a": [1, {"b": math.nan}]},
    "int-2**64": 2**64,
    "int-below-i64": -(2**63) - 1,
    "non-str-dict-key": {1: "a"},
    "object": object(),
    "set": {1, 2},
    "frozenset": frozenset({1}),
    "bytes": b"bytes",
    "bytearray": bytearray(b"x"),
    "tuple": (1, 2),
    "nested-tuple": {"a": [(1,)]},
    "datetime": datetime(2024, 1, 1, tzinfo=UTC),
    "uuid": UUID(int=1),
    "decimal": Decimal("1.5"),
    "complex": 1j,
    "lone-surrogate-str": "\ud800",
    "lone-surrogate-dict-key": {"\udcff": 1},
}

# Not keys: InvalidKey (also a ValueError) from every method that takes one.
INVALID_KEYS: dict[str, Any] = {
    "empty": "",
    "int": 1,
    "float": 1.5,
    "bytes": b"key",
    "none": None,
    "too-long-ascii": "k" * 1025,
    "too-long-multibyte": "é" * 513,
    "lone-surrogate": "\ud800",
    "surrogate-in-text": "key\udcffend",
}

# Exactly the 1024-byte limit, in characters of every UTF-8 length.
LIMIT_KEYS: dict[str, str] = {
    "ascii-1024": "k" * 1024,
    "2-byte-chars": "é" * 512,
    "3-byte-chars": "€" * 341 + "k",
    "4-byte-chars": "😀" * 256,
}

# Keys that look like paths, patterns, commands or namespaces: plain data all the same.
PLAIN_KEYS: dict[str, str] = {
    "parent-traversal": "../../etc/passwd",
    "absolute-path": "/abs/path",
    "slash": "a/b",
    "backslash-traversal": "..\\x",
    "windows-path": "C:\\Windows\\system32",
    "dot": ".",
    "dotdot": "..",
    "spaces": "key with spaces",
    "space": " ",
    "colon": ":",
    "double-colon": "::",
    "namespace-looking": "fleet-a:task",
    "glob": "*",
    "question": "?",
    "char-class": "[a-z]",
    "percent": "%",
    "underscore": "_",
    "like-pattern": "%_%",
    "backslash": "\\",
    "sql-injection": "'; DROP TABLE kv; --",
    "sql-or": "' OR '1'='1",
    "shell-env": "${HOME}",
    "shell-subst": "$(id)",
    "newline": "line\nbreak",
    "crlf": "a\r\nb",
    "tab": "tab\tkey",
    "nul": "nul\x00key",
    "emoji": "😀",
    "cyrillic": "ключ",
    "rtl": "עברית",
    "url": "redis://host:6379/0",
    "format": "%s%n{0}",
}

# keys() must match prefixes literally, case-sensitively: no LIKE, GLOB or MATCH semantics.
LISTING_KEYS: tuple[str, ...] = (
    "a", "ab", "abc", "b", "A", "Ab", "a%b", "a%", "axb", "a_b", "a*b", "a*", "a[b]", "a[",
    "a\\b", "a\\", "a?b", "100%", "100x", "%", "_", "*", "[", "]", "\\", "?", "é", "ée", "😀x",
    "a:b", ":a",
)  # fmt: skip
LISTING_PREFIXES: tuple[str, ...] = (
    "", "a", "ab", "abc", "abcd", "nomatch", "A", "%", "_", "*", "[", "]", "\\", "?", "a%",
    "a_", "a*", "a[", "a\\", "a?", "100%", "100_", "é", "😀", ":", "a:",
)  # fmt: skip

CONSISTENCY_LEVELS: dict[str, Consistency | str] = {
    "STRONG": Consistency.STRONG,
    "EVENTUAL": Consistency.EVENTUAL,
    "strong": "strong",
    "eventual": "eventual",
}
INVALID_CONSISTENCY: dict[str, Any] = {"quorum": "quorum", "empty": "", "int": 1, "bool": True}

INVALID_TTLS: dict[str, Any] = {
    "zero": 0,
    "zero-float": 0.0,
    "negative": -1,
    "nan": math.nan,
    "inf": math.inf,
    "str": "5",
    "bool": True,
}


def same_json(a: Any, b: Any) -> bool:
    """Equal *and* of the same JSON types throughout (``True`` is not ``1``, ``-0.0`` not ``0.0``)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    return bool(a == b)
