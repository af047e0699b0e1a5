"""Keeps secrets out of logs, reprs and error messages."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

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
