"""What the memory backend adds to the contract: names, URLs, the life of a space."""

from __future__ import annotations

import time
import uuid

import pytest

from storage_core import ConfigError, StorageError, available_backends, open_storage
from storage_memory import MemoryConfig, MemoryStorage


def test_found_through_its_entry_point() -> None:
    info = available_backends()["memory"]
    assert info.cls is MemoryStorage
    assert info.distribution == "storage-memory"
    assert info.url_schemes == ("memory",)


def test_stores_of_one_name_share_their_data_and_others_do_not() -> None:
    name = uuid.uuid4().hex
    with open_storage(f"memory://{name}") as one, open_storage({"backend": "memory", "memory": {"name": name}}) as two:
        one.write("k", 1)
        assert two.read("k") == 1
        with open_storage(f"memory://{uuid.uuid4().hex}") as other:
            assert not other.exists("k")


def test_the_data_goes_with_the_last_store_of_its_name() -> None:
    name = uuid.uuid4().hex
    first = open_storage(f"memory://{name}")
    first.write("k", 1)
    with open_storage(f"memory://{name}") as second:
        first.close()
        assert second.read("k") == 1, "one store of the name is still open"
    with open_storage(f"memory://{name}") as third:
        assert not third.exists("k")


def test_expired_keys_are_absent_to_listing_and_delete() -> None:
    with open_storage(f"memory://{uuid.uuid4().hex}") as store:
        store.write_many({"a": 1, "b": 2})
        store.write("c", 3, ttl=0.01)
        time.sleep(0.02)
        assert sorted(store.keys()) == ["a", "b"]
        store.write("d", 4, ttl=0.01)
        time.sleep(0.02)
        assert store.delete("d") is False
        assert store.delete("a") is True
        assert list(store.keys()) == ["b"]


def test_keys_pages_through_a_keyspace_that_changes_meanwhile() -> None:
    with open_storage(f"memory://{uuid.uuid4().hex}") as store:
        store.write_many({f"k{i:04}": i for i in range(1000)})
        seen = []
        for key in store.keys("k"):
            seen.append(key)
            if key == "k0300":
                store.write("k0999x", 0)  # after the cursor: listed
                store.delete("k0100")  # before it: already listed
        assert seen[:2] == ["k0000", "k0001"]
        assert len(seen) == 1001
        assert "k0999x" in seen


@pytest.mark.parametrize(
    ("url", "name"), [("memory://", "default"), ("memory://tests", "tests"), ("MEMORY://Tests/", "Tests")]
)
def test_urls_name_the_space(url: str, name: str) -> None:
    store = MemoryStorage.from_url(url)
    assert repr(store) == f"<MemoryStorage memory://{name}>"


@pytest.mark.parametrize("url", ["memory://a/b", "memory://a?x=1"])
def test_a_url_with_more_than_a_name_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="expected memory://NAME"):
        MemoryStorage.from_url(url)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"name": ""}, "storage.memory.name: expected a non-empty name"),
        ({"name": 3}, "storage.memory.name: expected a string, got int 3"),
        ({"nmae": "x"}, "storage.memory: unknown field 'nmae' (did you mean 'name'?); expected one of: name"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MemoryStorage.from_options(options)
    assert str(caught.value) == says


def test_a_config_built_in_code_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"storage\.memory\.name: expected a string"):
        MemoryConfig(name=None)  # type: ignore[arg-type]


def test_a_listing_that_outlives_its_store_says_so() -> None:
    store = MemoryStorage(MemoryConfig(name=uuid.uuid4().hex))
    store.initialize()
    keys = store.keys()  # a generator: nothing runs before the first next()
    store.close()
    with pytest.raises(StorageError, match="was closed while in use: initialize"):
        next(keys)
