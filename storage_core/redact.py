"""Keeps secrets out of logs, reprs and error messages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_url"]

# A query parameter whose name says it holds a secret: ?password=, ?ssl_password=, ?token=...
_SECRET_PARAM = re.compile(r"(?i)([?&;][^=&;#]*(?:pass|secret|token|key)[^=&;#]*=)[^&;#]*")


def redact_url(url: str) -> str:
    """*url* with any password (in the user info or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc and not _SECRET_PARAM.search("?" + parts.query):
        return url  # rebuilding would drop the empty authority of local:///path
    if "@" in parts.netloc:
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{hostinfo}")
    if parts.query:
        parts = parts._replace(query=_SECRET_PARAM.sub(r"\1***", "?" + parts.query)[1:])
    return urlunsplit(parts)
