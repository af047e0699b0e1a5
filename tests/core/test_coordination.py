"""The coordination types of storage_core.backend, as a backend author uses them."""

from __future__ import annotations

import typing

import pytest

from storage_core.backend import Change, ChangeKind, Fence, InvalidArgument, Lease, Outcome, RawChange
from storage_core.coordination import check_lease_ttl


def test_an_outcome_is_applied_only_without_a_lost_lease_or_conflicts() -> None:
    assert Outcome().applied
    assert Outcome(deleted=2).applied
    assert not Outcome(lease_lost=True).applied
    assert not Outcome(conflicts=("ns:a",)).applied


def test_the_plain_data_types_hold_what_they_are_given() -> None:
    fence = Fence("ns:job", 3)
    assert (fence.name, fence.token) == ("ns:job", 3)
    raw = RawChange("ns:k", "put", "v1", "7")
    change = Change(raw.key[3:], raw.kind, raw.version, raw.cursor)
    assert change == Change("k", "put", "v1", "7")
    assert set(typing.get_args(ChangeKind)) == {"put", "delete"}
    lease = Lease("job", 3, 12.5, "store-id/ns")
    assert lease.token == fence.token
    with pytest.raises(AttributeError):
        lease.token = 4  # type: ignore[misc]


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "1", 86400.0 * 366])
def test_a_lease_ttl_must_be_positive_seconds_up_to_a_year(ttl: object) -> None:
    with pytest.raises(InvalidArgument, match="renew a lease that must last longer"):
        check_lease_ttl(ttl)
    assert check_lease_ttl(1) == 1.0
