"""Transactions: every expected version checked, then every write and delete applied, or none."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from storage_core.capabilities import Capability
from storage_core.errors import InvalidKey, SerializationError, VersionConflict
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore
from storage_core.testing._leases import require

ACCOUNTS = 10
START_BALANCE = 100


def move_units(store: Storage, rounds: int, seed: int) -> list[int]:
    """Make *rounds* moves of one unit between random accounts; return each account's net change.

    Every move reads both accounts, then writes both only if neither changed meanwhile:
    a lost update would show as balances that differ from the sum of these changes.
    """
    rng = random.Random(seed)
    deltas = [0] * ACCOUNTS
    moved = 0
    while moved < rounds:
        a, b = rng.sample(range(ACCOUNTS), 2)
        src, dst = f"acct{a}", f"acct{b}"
        one, two = store.read_entry(src), store.read_entry(dst)
        if one.value == 0:
            continue
        try:
            store.transaction(
                expect={src: one.version, dst: two.version},
                write={src: one.value - 1, dst: two.value + 1},
            )
        except VersionConflict:
            continue
        moved += 1
        deltas[a] -= 1
        deltas[b] += 1
    return deltas


class TransactionsContract(ContractBase):
    """``transaction(expect=, write=, delete=)``: atomic, exact, and naming the keys that differed."""

    @pytest.fixture
    def txn(self, store: Storage) -> Storage:
        require(store, Capability.TRANSACTIONS)
        return store

    def test_transaction_applies_every_write_and_delete(self, txn: Storage) -> None:
        txn.write_many({"a": 1, "c": 3})
        a = txn.read_entry("a")
        txn.transaction(expect={"a": a.version, "b": None}, write={"a": 10, "b": 20}, delete=["c", "never"])
        assert txn.read_many(["a", "b", "c"]) == {"a": 10, "b": 20}

    def test_transaction_conflict_changes_nothing_and_names_the_keys(self, txn: Storage) -> None:
        txn.write_many({"a": 1, "b": 2, "c": 3})
        a, b = txn.read_entry("a"), txn.read_entry("b")
        txn.write("b", 22)
        with pytest.raises(VersionConflict, match=r"keys 'b' no longer") as caught:
            txn.transaction(
                expect={"a": a.version, "b": b.version, "new": None},
                write={"a": 10, "b": 20},
                delete=["c"],
            )
        assert "'a'" not in str(caught.value), "only the keys that differed are named"
        assert txn.read_many(["a", "b", "c", "new"]) == {"a": 1, "b": 22, "c": 3}
        txn.write("new", 0)
        with pytest.raises(VersionConflict, match="keys 'b', 'new' no longer"):
            txn.transaction(expect={"a": a.version, "b": b.version, "new": None}, write={"a": 10})
        txn.delete("a")
        with pytest.raises(VersionConflict, match="'a'"):
            txn.transaction(expect={"a": a.version}, write={"x": 1})
        assert not txn.exists("x")

    def test_transaction_checks_every_one_of_many_expected_keys(self, txn: Storage) -> None:
        """More expected keys than one SQL statement or batch may carry: none is left unchecked."""
        keys = [f"many{i}" for i in range(1_200)]
        txn.write_many(dict.fromkeys(keys, 0))
        versions = {key: txn.read_entry(key).version for key in keys}
        txn.write("many1100", 1)
        with pytest.raises(VersionConflict, match=r"keys 'many1100' no longer") as caught:
            txn.transaction(expect=versions, write={"done": True})
        assert "'many0'" not in str(caught.value)
        assert not txn.exists("done")
        versions["many1100"] = txn.read_entry("many1100").version
        txn.transaction(expect=versions, write={"done": True})
        assert txn.read("done") is True

    def test_transaction_expect_only_is_a_check(self, txn: Storage) -> None:
        txn.write("a", 1)
        txn.transaction(expect={"a": txn.read_entry("a").version})
        with pytest.raises(VersionConflict):
            txn.transaction(expect={"a": None})
        txn.transaction()

    def test_transaction_expired_key_counts_as_absent(self, txn: Storage) -> None:
        txn.write("a", 1, ttl=self.short_ttl)
        self.expire()
        txn.transaction(expect={"a": None}, write={"a": 2})
        assert txn.read("a") == 2

    def test_transaction_ttl_applies_to_the_writes(self, txn: Storage) -> None:
        txn.write("keep", 1)
        txn.transaction(write={"t": 1}, delete=[], ttl=self.short_ttl)
        self.expire()
        assert txn.read_many(["t", "keep"]) == {"keep": 1}

    def test_transaction_refuses_bad_input_before_any_io(self, txn: Storage) -> None:
        txn.write("a", 1)
        with pytest.raises(SerializationError):
            txn.transaction(write={"a": 2, "b": float("nan")})
        with pytest.raises(InvalidKey):
            txn.transaction(write={"a": 2}, delete=[""])
        with pytest.raises(ValueError, match="both written and deleted"):
            txn.transaction(write={"a": 2}, delete=["a"])
        with pytest.raises(ValueError, match="version str"):
            txn.transaction(expect={"a": 5}, write={"a": 2})  # type: ignore[dict-item]
        with pytest.raises(ValueError, match="list of keys"):
            txn.transaction(delete="a")
        assert txn.read_many(["a", "b"]) == {"a": 1}

    def test_transaction_namespaces_stay_apart(self, txn: Storage, make_store: MakeStore) -> None:
        from storage_core.testing._base import fresh_namespace  # noqa: PLC0415

        other = make_store(fresh_namespace())
        other.write("a", "other")
        txn.transaction(expect={"a": None}, write={"a": "mine"})
        assert other.read("a") == "other"
        assert txn.read("a") == "mine"

    def test_transaction_threads_moving_units_keep_the_total(self, txn: Storage) -> None:
        txn.write_many({f"acct{i}": START_BALANCE for i in range(ACCOUNTS)})
        workers, rounds = self.thread_workers, 25
        start = threading.Barrier(workers)

        def work(me: int) -> list[int]:
            start.wait(self.process_timeout)
            return move_units(txn, rounds, me)

        with ThreadPoolExecutor(workers) as pool:
            deltas = list(pool.map(work, range(workers), timeout=self.process_timeout))
        assert_balances(txn, deltas)


def assert_balances(store: Storage, deltas: list[list[int]]) -> None:
    """The total is unchanged, and each balance is exactly what the reported moves made of it."""
    balances = store.read_many([f"acct{i}" for i in range(ACCOUNTS)])
    assert sum(balances.values()) == ACCOUNTS * START_BALANCE, balances
    expected = {f"acct{i}": START_BALANCE + sum(d[i] for d in deltas) for i in range(ACCOUNTS)}
    assert balances == expected, "an update was lost: balances differ from the moves that succeeded"
