"""Loads ``agent.yaml``: safe YAML, ``${VAR}`` from the environment, strict validation.

Only the ``storage`` section is ours; the rest of the file belongs to the agent.
Secrets in it are held as :class:`~storage_core.redact.Secret`, so a logged config
shows ``***``; relative file paths are resolved against the config file's folder.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage_core.consistency import Consistency
from storage_core.coordination import DEFAULT_CHANGE_RETENTION
from storage_core.errors import ConfigError
from storage_core.observers.specs import ObserverSpec, parse_observers
from storage_core.redact import seal
from storage_core.registry import get_registry
from storage_core.storage import check_namespace
from storage_core.suggest import did_you_mean

if TYPE_CHECKING:
    import yaml

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "Section",
    "StorageConfig",
    "expand_env",
    "load_config",
    "take_read_only",
]

DEFAULT_CONFIG_FILE = "agent.yaml"
_CORE_FIELDS = ("backend", "consistency", "namespace", "change_feed", "change_retention", "read_only", "observers")
# A "${" that no alternative before the last one takes is unclosed or names no variable.
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class Section(Mapping[str, Any]):
    """A read-only config section that pickles, and knows the folder its file is in.

    ``base_dir`` is what a backend's relative ``file_path()`` fields are resolved
    against (None when the section did not come from a file).
    """

    __slots__ = ("_items", "base_dir")

    def __init__(self, items: Mapping[str, Any] | None = None, base_dir: str | None = None) -> None:
        self._items = dict(items or {})
        self.base_dir = base_dir

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Section({self._items!r})"


@dataclass(frozen=True)
class StorageConfig:
    """The validated ``storage`` section; ``source`` names where it came from.

    Its ``repr`` and ``str`` show every secret as ``***``.
    """

    backend: str = "local"
    consistency: Consistency = Consistency.STRONG
    namespace: str = ""
    change_feed: bool = False  # record every write for watch() (coordination, issue 8)
    change_retention: int = DEFAULT_CHANGE_RETENTION  # changes the feed keeps
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=Section)
    source: str = "<defaults>"
    read_only: bool = False
    observers: tuple[ObserverSpec, ...] = ()
    """``storage.observers``: the observers every store opened from this config gets."""

    def options_for(self, backend: str) -> Mapping[str, Any]:
        """The options section of *backend* (empty when the file has none)."""
        found = self.sections.get(backend)
        if found is not None:
            return found
        return Section(base_dir=getattr(self.sections, "base_dir", None))


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> StorageConfig:
    """Read and validate a config.

    *source* is a path to a YAML file, a mapping shaped like the file (or like its
    ``storage`` section), or None: ``./agent.yaml`` if present, else the embedded default.
    Relative paths in a file are relative to the file's folder; in a mapping, to the
    current directory.

    Raises:
        ConfigError: naming the file, the field and what was expected.
    """
    if source is None:
        if not Path(DEFAULT_CONFIG_FILE).is_file():
            return StorageConfig()
        source = DEFAULT_CONFIG_FILE
    base_dir: str | None = None
    if isinstance(source, Mapping):
        document: Any = source
        origin = "<mapping>"
        if "storage" not in source:
            document = {"storage": source}
    else:
        origin = os.fspath(source)
        document = _read_yaml(Path(origin))
        base_dir = os.path.dirname(os.path.abspath(origin))
    try:
        return _validate(document, origin, base_dir)
    except ConfigError as exc:
        raise exc.with_source(origin) from None


def take_read_only(url: str) -> tuple[str, bool]:
    """*url* without its ``read_only`` query parameter, and what that said (False when absent).

    Read-only is the core's, whatever the backend: taken off before the backend parses
    the URL, so every backend's URLs accept it.

    Raises:
        ConfigError: the parameter is not true or false.
    """
    base, mark, query = url.partition("?")
    if not mark:
        return url, False
    query, hash_mark, fragment = query.partition("#")
    kept, read_only = [], False
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "read_only":
            read_only = _as_bool(value, "url (read_only)")
        elif pair:
            kept.append(pair)
    rest = "&".join(kept)
    return f"{base}{'?' if rest else ''}{rest}{hash_mark}{fragment}", read_only


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        # No "-c" hint here: only the command line has that flag, and it adds it.
        raise ConfigError(
            "config file not found; check the path, or give no config to use ./agent.yaml or the embedded default",
            source=str(path),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file: {exc}", source=str(path)) from None
    import yaml  # noqa: PLC0415 - only when a file is read: it is a fifth of import time

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        note = ""
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            note = "; only plain YAML is accepted, no Python tags"
        raise ConfigError(f"{line}not valid YAML for a config ({problem}){note}", source=str(path)) from None


@functools.cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """A ``SafeLoader`` that refuses a key given twice in one mapping (YAML itself keeps the last).

    Built on first use, so yaml is imported only when a file is read.
    """
    import yaml  # noqa: PLC0415

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: construct_mapping names it
                    break
                if first is not None:
                    problem = f"the key {key!r} is given twice, on lines {first} and {line}; keep one"
                    raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _validate(document: Any, origin: str, base_dir: str | None) -> StorageConfig:
    if not isinstance(document, Mapping):
        raise ConfigError(f"expected a mapping with a 'storage' section, got {type(document).__name__}")
    if "storage" not in document:
        raise ConfigError("no 'storage' section; add one (see config/agent.example.yaml)", field="storage")
    section = document["storage"]
    if section is None:
        raise ConfigError(
            "the 'storage' section is empty; indent its fields under it (such as '  backend: local'), "
            "or remove it to use the embedded default",
            field="storage",
        )
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
    read_only = _as_bool(core.get("read_only", False), "storage.read_only")

    change_feed, change_retention = _change_feed_fields(core)

    known = get_registry().known_names() | {backend}
    sections: dict[str, Mapping[str, Any]] = {}
    for name, options in section.items():
        if name in _CORE_FIELDS:
            continue
        if name not in known:
            expected = ", ".join([*_CORE_FIELDS, *sorted(known)])
            hint = did_you_mean(name, [*_CORE_FIELDS, *known])
            raise ConfigError(f"unknown field {name!r}{hint}; expected one of: {expected}", field="storage")
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(
                f"expected a mapping of {name} options, got {type(options).__name__}", field=f"storage.{name}"
            )
        # Only the selected backend's section is expanded: an operator may keep a redis
        # section whose ${REDIS_PASSWORD} is unset on hosts that run the local backend.
        selected = expand_env(options, f"storage.{name}") if name == backend else options
        sections[name] = Section(seal(dict(selected or {})), base_dir)
    return StorageConfig(
        backend=backend,
        consistency=consistency,
        namespace=namespace,
        change_feed=change_feed,
        change_retention=change_retention,
        sections=Section(sections, base_dir),
        source=origin,
        read_only=read_only,
        observers=parse_observers(core.get("observers")),
    )


def _as_bool(value: Any, where: str) -> bool:
    if type(value) is bool:
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _BOOL_WORDS:
        return _BOOL_WORDS[word]
    raise ConfigError(f"expected true or false, got {value!r:.60}", field=where)


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

    Raises:
        ConfigError: a variable without default is unset, or a ``${`` is not closed.
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
    if name is None:
        # The value is not shown: it may be a password with a typo in it.
        raise ConfigError(
            "a '${' is not closed by '}' or names no variable: write ${VAR} or ${VAR:-default} "
            "(a variable name is letters, digits and _), or $${ for a literal ${",
            field=where,
        )
    found = os.environ.get(name)
    if found is not None and (found or default is None):
        return found
    if default is not None:
        return default
    raise ConfigError(
        f"the environment variable {name} is not set; export it or write ${{{name}:-default}}", field=where
    )
