"""Keeps secrets out of logs, reprs and error messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["Secret", "is_secret_name", "redact_url", "seal"]

# A name that says it holds a secret: password, ssl_password, token, api_key...
_SECRET_NAME = re.compile(r"(?i)pass|secret|token|key")
# A query parameter whose name says it holds a secret: ?password=, ?ssl_password=, ?token=...
_SECRET_PARAM = re.compile(r"(?i)([?&;][^=&;#]*(?:pass|secret|token|key)[^=&;#]*=)[^&;#]*")
_MASKED = r"\1***"


def redact_url(url: str) -> str:
    """*url* with any password (in the user info or the query) replaced by ``***``.

    Works on the text, not on ``urlsplit``: a password holding an unencoded ``/``, ``?``
    or ``#`` ends urllib's idea of the host part early and would slip through. Anything
    between ``://`` and the last ``@`` counts as user info, so the mask errs on the side
    of hiding too much.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    if "@" in rest and not rest.startswith("/"):  # local:///a@b has no authority at all
        userinfo, _, rest = rest.rpartition("@")
        rest = f"{userinfo.split(':', 1)[0]}:***@{rest}"
    return f"{scheme}://{_SECRET_PARAM.sub(_MASKED, rest)}"


class Secret(str):
    """A str that shows as ``***`` (a URL: with its password masked) wherever it is printed.

    A str subclass, so a backend, redis-py or SQLite uses it as the plain value it is
    (``encode``, ``+``, comparisons, slicing all see the real text), while ``repr``,
    ``str``, ``%s``, f-strings and logging show the mask. Failing closed: code that
    turns it into text with ``str()`` gets the mask, never the secret; :meth:`reveal`
    is the one way out. It pickles as a ``Secret`` (a spawned worker needs the value to
    connect), so a copy stays masked too.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Secret:
        # str(value) of a Secret would be its mask: take its text as it is.
        return super().__new__(cls, str.__str__(value))

    def reveal(self) -> str:
        """The secret as a plain str: only for handing to the client that needs it."""
        return str.__str__(self)

    def __str__(self) -> str:
        text = str.__str__(self)
        return redact_url(text) if "://" in text else "***"

    def __repr__(self) -> str:
        return repr(self.__str__())

    def __format__(self, spec: str) -> str:
        return format(self.__str__(), spec)


def is_secret_name(name: object) -> bool:
    """Whether a field or query parameter called *name* holds a secret, by its name alone."""
    return isinstance(name, str) and _SECRET_NAME.search(name) is not None


def seal(value: Any, name: object = None) -> Any:
    """*value* with every secret in it held as a :class:`Secret`.

    A secret is a str under a secret-looking *name* (:func:`is_secret_name`), or a URL
    whose user info or query carries a password; mappings and lists are sealed item by
    item. Other values come back as they are.
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        if is_secret_name(name) or ("://" in value and redact_url(value) != value):
            return Secret(value)
        return value
    if isinstance(value, Mapping):
        return {k: seal(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [seal(v, name) for v in value]
    return value
