"""The codec stores exactly what JSON can hold, and refuses the rest before any I/O."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections import OrderedDict
from typing import Any

import orjson
import pytest

from storage_core import SerializationError
from storage_core.codec import decode, encode


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    ONE = 1


class Name(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


EXACT: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    0.1,
    -0.0,
    1e308,
    5e-324,
    "",
    "héllo ✓ 🚀",
    "nul\x00inside",
    [],
    {},
    {"tasks": [{"id": 1, "done": False, "tags": ["a", "b"], "score": 0.5, "next": None}]},
    [[[[[]]]]],
]


@pytest.mark.parametrize("value", EXACT, ids=repr)
def test_exact_values_round_trip_with_their_types(value: Any) -> None:
    back = decode(encode(value), "k")
    assert back == value
    assert type(back) is type(value)
    assert orjson.dumps(back) == encode(value)


NOT_JSON: list[tuple[Any, str]] = [
    (float("nan"), "nan"),
    (float("inf"), "inf"),
    (float("-inf"), "-inf"),
    ({"a": [1, {"b": float("nan")}]}, "$.a[1].b"),
    (2**64, "an int beyond 64 bits (store it as a str)"),
    (-(2**63) - 1, "64 bits"),
    ({1: "one"}, "a dict key that is not a str"),
    ({("t",): 1}, "convert the keys to str"),
    (object(), "object"),
    ({1, 2}, "set"),
    (b"bytes", "bytes"),
    ((1, 2), "tuple"),
    ({"when": datetime.datetime(2026, 1, 1)}, "datetime"),
    (datetime.date(2026, 1, 1), "date"),
    (uuid.UUID(int=7), "UUID"),
    (Color.RED, "Color"),
    (Level.ONE, "Level"),
    (Name("x"), "Name"),
    (OrderedDict(a=1), "OrderedDict"),
    (decimal.Decimal("1.5"), "Decimal"),
    (Point(1), "Point"),
    ([1, 2, [3, (4,)]], "$[2][1]"),
]


def _id(value: object) -> str:
    """The case's repr, but a bare object's (which shows its address) the same in every run."""
    return "object()" if type(value) is object else repr(value)


@pytest.mark.parametrize(("value", "named"), NOT_JSON, ids=_id)
def test_values_json_cannot_hold_exactly_are_refused(value: Any, named: str) -> None:
    with pytest.raises(SerializationError) as info:
        encode(value)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "cannot be stored as JSON" in message
    assert named.lower() in message.lower()


def test_a_cycle_is_refused_not_looped_on() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="cannot be stored as JSON"):
        encode(cycle)


def test_a_tuple_message_says_to_use_a_list() -> None:
    with pytest.raises(SerializationError, match="use a list"):
        encode({"pair": (1, 2)})


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (datetime.datetime(2026, 1, 1), r"a datetime.datetime \(store value.isoformat\(\)\)"),
        ({"id": uuid.UUID(int=1)}, r"a UUID at \$.id, .* \(store str\(value\)\)"),
        (Color.RED, r"\(store its .value\)"),
        ([float("nan")], r"nan at \$\[0\], .* \(store None or a str\)"),
        (b"raw", r"a bytes \(store text, such as base64\)"),
        (Point(1), r"a Point \(convert it to dict, list, str, int, float, bool or None\)"),
    ],
)
def test_a_refusal_names_the_key_and_what_to_store_instead(value: Any, hint: str) -> None:
    with pytest.raises(SerializationError, match=r"^the value for key 'task_queue' cannot be stored as JSON exactly: "):
        encode(value, "task_queue")
    with pytest.raises(SerializationError, match=hint):
        encode(value, "task_queue")


@pytest.mark.parametrize("data", [b"", b"{", b"NaN", b"\xff\xfe", b"not json"])
def test_stored_bytes_that_are_not_json_name_the_key(data: bytes) -> None:
    with pytest.raises(SerializationError, match="'task_queue'") as info:
        decode(data, "task_queue")
    assert "overwrite or delete" in str(info.value)
