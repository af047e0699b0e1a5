"""Loads ``agent.yaml``: safe YAML, ``${VAR}`` from the environment, strict validation.

Only the ``storage`` section is ours; the rest of the file belongs to the agent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from storage_core.consistency import Consistency
from storage_core.coordination import DEFAULT_CHANGE_RETENTION
from storage_core.errors import ConfigError
from storage_core.registry import get_registry
from storage_core.storage import check_namespace

__all__ = ["DEFAULT_CONFIG_FILE", "StorageConfig", "expand_env", "load_config"]

DEFAULT_CONFIG_FILE = "agent.yaml"
_CORE_FIELDS = ("backend", "consistency", "namespace", "change_feed", "change_retention")
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class StorageConfig:
    """The validated ``storage`` section; ``source`` names where it came from."""

    backend: str = "local"
    consistency: Consistency = Consistency.STRONG
    namespace: str = ""
    change_feed: bool = False  # record every write for watch() (coordination, issue 8)
    change_retention: int = DEFAULT_CHANGE_RETENTION  # changes the feed keeps
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "<defaults>"

    def options_for(self, backend: str) -> Mapping[str, Any]:
        """The options section of *backend* (empty when the file has none)."""
        return self.sections.get(backend, MappingProxyType({}))


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> StorageConfig:
    """Read and validate a config.

    *source* is a path to a YAML file, a mapping shaped like the file (or like its
    ``storage`` section), or None: ``./agent.yaml`` if present, else the embedded default.

    Raises:
        ConfigError: naming the file, the field and what was expected.
    """
    if source is None:
        if not Path(DEFAULT_CONFIG_FILE).is_file():
            return StorageConfig()
        source = DEFAULT_CONFIG_FILE
    if isinstance(source, Mapping):
        document: Any = source
        origin = "<mapping>"
        if "storage" not in source:
            document = {"storage": source}
    else:
        origin = os.fspath(source)
        document = _read_yaml(Path(origin))
    try:
        return _validate(document, origin)
    except ConfigError as exc:
        raise exc.with_source(origin) from None


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "config file not found; pass an existing file with -c/--config, or omit it to use the embedded default",
            source=str(path),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file: {exc}", source=str(path)) from None
    import yaml  # noqa: PLC0415 - only when a file is read: it is a fifth of import time

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{line}not valid YAML for a config ({problem}); only plain YAML is accepted, no Python tags",
            source=str(path),
        ) from None


def _validate(document: Any, origin: str) -> StorageConfig:
    if not isinstance(document, Mapping):
        raise ConfigError(f"expected a mapping with a 'storage' section, got {type(document).__name__}")
    section = document.get("storage")
    if section is None:
        raise ConfigError("no 'storage' section; add one (see config/agent.example.yaml)", field="storage")
    if not isinstance(section, Mapping):
        raise ConfigError(f"expected a mapping, got {type(section).__name__}", field="storage")
    core = {name: expand_env(section[name], f"storage.{name}") for name in _CORE_FIELDS if name in section}

    backend = core.get("backend", "local")
    if not isinstance(backend, str) or not backend:
        raise ConfigError(
            f"expected a backend name such as 'local' or 'redis', got {backend!r}", field="storage.backend"
        )
    try:
        consistency = Consistency.parse(core.get("consistency", Consistency.STRONG))
    except ValueError:
        raise ConfigError(
            f"expected 'strong' or 'eventual', got {core.get('consistency')!r}", field="storage.consistency"
        ) from None
    namespace = core.get("namespace")
    try:
        namespace = check_namespace("" if namespace is None else namespace)
    except ValueError as exc:
        raise ConfigError(f"expected a short name such as 'fleet-a': {exc}", field="storage.namespace") from None

    change_feed, change_retention = _change_feed_fields(core)

    known = get_registry().known_names() | {backend}
    sections: dict[str, Mapping[str, Any]] = {}
    for name, options in section.items():
        if name in _CORE_FIELDS:
            continue
        if name not in known:
            expected = ", ".join([*_CORE_FIELDS, *sorted(known)])
            raise ConfigError(f"unknown field {name!r}; expected one of: {expected}", field="storage")
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(
                f"expected a mapping of {name} options, got {type(options).__name__}", field=f"storage.{name}"
            )
        # Only the selected backend's section is expanded: an operator may keep a redis
        # section whose ${REDIS_PASSWORD} is unset on hosts that run the local backend.
        selected = expand_env(options, f"storage.{name}") if name == backend else options
        sections[name] = MappingProxyType(dict(selected or {}))
    return StorageConfig(
        backend=backend,
        consistency=consistency,
        namespace=namespace,
        change_feed=change_feed,
        change_retention=change_retention,
        sections=MappingProxyType(sections),
        source=origin,
    )


def _change_feed_fields(core: Mapping[str, Any]) -> tuple[bool, int]:
    """``change_feed`` (a bool) and ``change_retention`` (how many changes the feed keeps)."""
    change_feed = core.get("change_feed", False)
    if type(change_feed) is not bool:
        raise ConfigError(f"expected true or false, got {change_feed!r}", field="storage.change_feed")
    retention = core.get("change_retention", DEFAULT_CHANGE_RETENTION)
    if type(retention) is not int or retention < 1:
        raise ConfigError(
            f"expected a whole number of changes to keep (>= 1), got {retention!r}", field="storage.change_retention"
        )
    return change_feed, retention


def expand_env(value: Any, where: str) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string (``$$`` is a literal ``$``).

    Expanded after parsing, so an environment value is never read as YAML.
    """
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: _lookup(m, where), value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _lookup(match: re.Match[str], where: str) -> str:
    if match.group(0) == "$$":
        return "$"
    name, default = match.group(1), match.group(2)
    found = os.environ.get(name)
    if found is not None and (found or default is None):
        return found
    if default is not None:
        return default
    raise ConfigError(
        f"the environment variable {name} is not set; export it or write ${{{name}:-default}}", field=where
    )
