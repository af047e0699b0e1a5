"""Typed parsing of a backend's config section into a dataclass, with precise errors.

Backends call :func:`parse_options` from ``from_options`` so every backend reports an
unknown field, a missing one or a wrong type the same way, naming the field, and
:func:`check_fields` from the dataclass's ``__post_init__`` so a config built directly in
code gets the same check. Backend authors import these from :mod:`storage_core.backend`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from storage_core.errors import ConfigError
from storage_core.redact import Secret
from storage_core.suggest import did_you_mean

__all__ = ["check_fields", "file_path", "parse_options", "seal_secret_fields", "secret"]

D = TypeVar("D")
_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def secret(**kwargs: Any) -> Any:
    """A dataclass field whose value never appears in an error message, ``repr`` or ``str``.

    :func:`parse_options` hands it over as a :class:`~storage_core.redact.Secret`; a
    dataclass built directly calls :func:`seal_secret_fields` in ``__post_init__``.
    """
    return dataclasses.field(metadata={"secret": True}, **kwargs)


def file_path(**kwargs: Any) -> Any:
    """A dataclass field holding a file path: relative to the config file's folder when relative.

    So an agent started from another directory (by a service manager, by cron) opens
    the same file, as docker-compose resolves its paths. Options that did not come from
    a file (a mapping, a URL) keep a relative path relative to the current directory.
    """
    return dataclasses.field(metadata={"path": True}, **kwargs)


def seal_secret_fields(instance: Any) -> None:
    """Hold every ``secret()`` str field of the frozen dataclass *instance* as a ``Secret``."""
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if field.metadata.get("secret") and isinstance(value, str) and not isinstance(value, Secret):
            object.__setattr__(instance, field.name, Secret(value))


def parse_options(cls: type[D], options: Mapping[str, Any], *, section: str) -> D:
    """Build the dataclass *cls* from *options*, the config section called *section*.

    Fields typed ``str``, ``int``, ``float`` (ints accepted), ``bool`` or ``X | None``
    are checked; numbers and booleans also come as strings, as ``${VAR}`` gives them.
    A ``secret()`` field's str arrives as a ``Secret``; a relative ``file_path()`` is
    joined to ``options.base_dir`` when the section came from a config file (see
    :meth:`storage_core.config.StorageConfig.options_for`).

    Raises:
        ConfigError: naming ``section.field`` and what was expected.
    """
    if not isinstance(options, Mapping):
        raise ConfigError(f"expected a mapping of options, got {type(options).__name__}", field=section)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(options) - set(fields), key=str)
    if unknown:
        raise ConfigError(
            f"unknown field {unknown[0]!r}{did_you_mean(unknown[0], fields)}; "
            f"expected one of: {', '.join(sorted(fields))}",
            field=section,
        )
    base_dir = getattr(options, "base_dir", None)
    values: dict[str, Any] = {}
    for name, given in options.items():
        values[name] = _convert(given, fields[name], hints[name], f"{section}.{name}", base_dir)
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        missing = [n for n, f in fields.items() if n not in values and _required(f)]
        raise ConfigError(f"missing required field(s): {', '.join(missing)}", field=section) from exc


def _convert(given: Any, field: dataclasses.Field[Any], hint: Any, where: str, base_dir: object) -> Any:
    is_secret = field.metadata.get("secret", False)
    # A Secret is converted as the plain text it is, and sealed again after.
    value = _coerce(given.reveal() if isinstance(given, Secret) else given, hint, where, is_secret)
    if field.metadata.get("path") and isinstance(value, str) and value and isinstance(base_dir, str):
        value = os.path.join(base_dir, os.path.expanduser(value))  # an absolute path stays as it is
    return Secret(value) if is_secret and isinstance(value, str) else value


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
        kind = str if isinstance(value, Secret) else type(value)
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
