"""Versions are derived from the stored bytes, so values stay plain JSON in every backend.

A content version makes compare-and-set exact for read-modify-write: a conditional write
succeeds only when the key still holds the bytes the caller's decision was based on. SHA-1
because Redis scripts can compute it too (``redis.sha1hex``); it names content, it is not
a security boundary.
"""

from __future__ import annotations

import hashlib

__all__ = ["content_version"]


def content_version(data: bytes) -> str:
    """The opaque version string of a stored value."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()
