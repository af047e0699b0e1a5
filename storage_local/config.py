"""The ``storage.local`` options, and the ``local:///path`` URL that carries them."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from storage_core.backend import ConfigError, check_fields, file_path, parse_options

__all__ = ["SECTION", "LocalConfig", "config_from_url", "default_path"]

SECTION = "storage.local"


def default_path() -> str:
    """The embedded default: ``$XDG_STATE_HOME/storage-core/state.db``.

    Falls back to ``~/.local/state/storage-core/state.db`` when ``XDG_STATE_HOME`` is
    unset or relative (the XDG spec says to ignore a relative one).
    """
    state_home = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state_home):
        state_home = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state_home, "storage-core", "state.db")


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """Options of the embedded SQLite backend.

    ``path``: the database file. ``~`` is expanded; a relative path in ``agent.yaml`` is
    relative to that file's folder (so cron or a service manager, starting the agent
    elsewhere, opens the same store), one given any other way is relative to the current
    directory when the store is constructed. Default: :func:`default_path`.
    ``timeout``: seconds to wait for another writer's lock before giving up.
    """

    path: str = file_path(default_factory=default_path)
    timeout: float = 5.0

    def __post_init__(self) -> None:
        check_fields(self, section=SECTION)
        if not self.path:
            raise ConfigError("expected the path of a database file, got an empty string", field=f"{SECTION}.path")
        if self.path.endswith(("/", os.sep)):
            raise ConfigError(
                f"{self.path!r} names a folder; add the database file's name, such as {self.path}state.db",
                field=f"{SECTION}.path",
            )
        if "\x00" in self.path:
            raise ConfigError("the path contains a NUL character", field=f"{SECTION}.path")
        if not (self.timeout >= 0 and math.isfinite(self.timeout)):
            raise ConfigError(
                f"expected a finite number of seconds >= 0, got {self.timeout!r}", field=f"{SECTION}.timeout"
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LocalConfig:
        """Parse the ``storage.local`` section.

        Raises:
            ConfigError: naming ``storage.local.<field>`` and what was expected.
        """
        return parse_options(cls, options, section=SECTION)


def config_from_url(url: str) -> LocalConfig:
    """Parse ``local:///absolute/path/state.db[?timeout=2.5]``.

    Raises:
        ConfigError: the URL has a host, no path, a relative path, or unknown options.
    """
    parts = urlsplit(url)
    expected = "expected local:///absolute/path/state.db (three slashes, then an absolute path)"
    if parts.scheme != "local":
        raise ConfigError(f"{expected}, got the scheme {parts.scheme!r}", field="url")
    if parts.netloc:
        raise ConfigError(f"{expected}; {parts.netloc!r} reads as a host name, and local URLs have none", field="url")
    path = unquote(parts.path)
    if not path or not os.path.isabs(path):
        raise ConfigError(f"{expected}, got the path {path!r}", field="url")
    options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "path" in options:
        raise ConfigError("the path goes in the URL's path, not in ?path=", field="url")
    return parse_options(cls=LocalConfig, options={**options, "path": path}, section=SECTION)
