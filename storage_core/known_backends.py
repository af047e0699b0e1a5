"""The one table of backends this project ships, for messages about a missing or broken one.

The registry never uses it to find a backend (those come from entry points like any
plugin's); it is what lets an error say which distribution to install or reinstall, and
which plugins the ``STORAGE_CORE_DISABLE_PLUGINS`` kill switch keeps. List only the URL
schemes a distribution really accepts today: a test compares them with the installed classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CHECKOUT_INSTALL",
    "FIRST_PARTY",
    "KNOWN_BACKENDS",
    "KnownBackend",
    "known_for_distribution",
    "known_for_scheme",
]

CHECKOUT_INSTALL = "make dev, or pip install -e . -e ./storage_redis"
"""How to install the bundled backends in a storage-core checkout, where no index has them."""


@dataclass(frozen=True, slots=True)
class KnownBackend:
    """A bundled backend: its name, the distribution that provides it, how to get it."""

    name: str
    distribution: str
    install: str
    """The command for a published release."""
    url_schemes: tuple[str, ...]

    @property
    def reinstall(self) -> str:
        """The command that repairs a broken installation of the distribution."""
        return self.install.replace("pip install ", "pip install --force-reinstall ", 1)

    def how_to_install(self) -> str:
        return f"{self.install} (in a storage-core checkout: {CHECKOUT_INSTALL})"

    def how_to_reinstall(self) -> str:
        return f"{self.reinstall} (in a storage-core checkout: {CHECKOUT_INSTALL})"


KNOWN_BACKENDS: Mapping[str, KnownBackend] = MappingProxyType(
    {
        known.name: known
        for known in (
            KnownBackend("local", "storage-core", "pip install storage-core", ("local",)),
            KnownBackend("redis", "storage-redis", "pip install 'storage-core[redis]'", ("redis", "rediss", "unix")),
        )
    }
)

FIRST_PARTY = frozenset(known.distribution for known in KNOWN_BACKENDS.values())
"""The distributions of this project: kept by the kill switch, and told apart in messages."""


def known_for_scheme(scheme: str) -> KnownBackend | None:
    """The bundled backend that accepts URLs of *scheme*, if any."""
    return next((known for known in KNOWN_BACKENDS.values() if scheme in known.url_schemes), None)


def known_for_distribution(distribution: str) -> KnownBackend | None:
    """The first bundled backend *distribution* provides, if it is one of ours."""
    return next((known for known in KNOWN_BACKENDS.values() if known.distribution == distribution), None)
