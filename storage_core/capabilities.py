"""What a backend may or may not provide beyond the core contract.

A backend lists what it has in ``Storage.capabilities``; a public method that needs one
calls ``Storage._require`` first, so a backend without it fails with one clear
:class:`~storage_core.errors.NotSupported` naming the backend and the capability, never
halfway through. The conformance suite skips the tests of a missing capability by name.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Capability"]


class Capability(StrEnum):
    """One optional capability; the value is the word used in messages and skip reasons."""

    ATOMIC_WRITE_MANY = "atomic_write_many"
    """``write_many`` applies all items or none, and readers never see a part of it."""

    READ_TTL = "read_ttl"
    """``ttl`` and ``read_many_with_ttl`` report a key's remaining expiry (export and migrate need it)."""

    LEASES = "leases"
    """``acquire_lease``/``renew_lease``/``release_lease``, and ``fence=`` on writes."""

    TRANSACTIONS = "transactions"
    """``transaction()``: expected versions checked and writes applied in one atomic step."""

    CHANGE_FEED = "change_feed"
    """``watch()``: every put and delete in commit order, resumable from a cursor."""
