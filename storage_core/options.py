"""Typed parsing of a backend's config section into a dataclass, with precise errors.

Backends call :func:`parse_options` from ``from_options`` so every backend reports an
unknown field, a missing one or a wrong type the same way, naming the field, and
:func:`check_fields` from the dataclass's ``__post_init__`` so a config built directly in
code gets the same check. Backend authors import these from :mod:`storage_core.backend`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from storage_core.errors import ConfigError

__all__ = ["check_fields", "parse_options", "secret"]

D = TypeVar("D")
_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def secret(**kwargs: Any) -> Any:
    """A dataclass field whose value never appears in an error message."""
    return dataclasses.field(metadata={"secret": True}, **kwargs)


def parse_options(cls: type[D], options: Mapping[str, Any], *, section: str) -> D:
    """Build the dataclass *cls* from *options*, the config section called *section*.

    Fields typed ``str``, ``int``, ``float`` (ints accepted), ``bool`` or ``X | None``
    are checked; numbers and booleans also come as strings, as ``${VAR}`` gives them.

    Raises:
        ConfigError: naming ``section.field`` and what was expected.
    """
    if not isinstance(options, Mapping):
        raise ConfigError(f"expected a mapping of options, got {type(options).__name__}", field=section)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown field {unknown[0]!r}; expected one of: {', '.join(sorted(fields))}",
            field=section,
        )
    values: dict[str, Any] = {}
    for name, value in options.items():
        field = fields[name]
        values[name] = _coerce(value, hints[name], f"{section}.{name}", field.metadata.get("secret", False))
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        missing = [n for n, f in fields.items() if n not in values and _required(f)]
        raise ConfigError(f"missing required field(s): {', '.join(missing)}", field=section) from exc


def check_fields(config: object, *, section: str) -> None:
    """Check that each field of the dataclass instance *config* holds a value of its annotated type.

    For ``__post_init__``: ``parse_options`` converts what a file or the environment gives,
    this catches a config built in code with, say, ``timeout="5"``. Exact types only, but
    an ``int`` where a ``float`` is expected (never a ``bool`` for a number).

    Raises:
        ConfigError: naming ``section.field`` and what was expected.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, field.name)
        allowed = _alternatives(hints[field.name])
        kind = type(value)
        if kind in allowed or (kind is int and float in allowed):
            continue
        shown = "" if field.metadata.get("secret", False) else f" {value!r:.60}"
        raise ConfigError(
            f"expected {_expected(list(allowed))}, got {kind.__name__}{shown}", field=f"{section}.{field.name}"
        )


def _alternatives(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _as_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    if type(value) is str and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise ValueError(value)


def _as_int(value: Any) -> int:
    if type(value) is int or (type(value) is str and value.strip().lstrip("-").isdigit()):
        return int(value)
    raise ValueError(value)


def _as_float(value: Any) -> float:
    if type(value) in (int, float, str):
        return float(value)  # a str that is no number raises ValueError
    raise ValueError(value)


def _as_str(value: Any) -> str:
    if type(value) is str:
        return value
    raise ValueError(value)


_CONVERTERS: dict[Any, Any] = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str}


def _coerce(value: Any, hint: Any, where: str, is_secret: bool) -> Any:
    allowed = list(_alternatives(hint))
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"expected {_expected(allowed)}, got nothing (null)", field=where)
    for kind in allowed:
        convert = _CONVERTERS.get(kind)
        if convert is None:
            continue
        try:
            return convert(value)
        except ValueError:
            pass
    shown = "" if is_secret else f" {value!r:.60}"
    raise ConfigError(f"expected {_expected(allowed)}, got {type(value).__name__}{shown}", field=where)


def _expected(allowed: list[Any]) -> str:
    return " or ".join(_NAMES.get(a, "null" if a is type(None) else getattr(a, "__name__", str(a))) for a in allowed)
