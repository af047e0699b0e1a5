"""The README's recipes run, and do what they say, against a store whose replies we can lose."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage_core import Consistency
from storage_local import LocalStorage

storage_redis = pytest.importorskip("storage_redis")
OutcomeUnknown = storage_redis.OutcomeUnknown

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def recipe(title: str) -> dict[str, Any]:
    """The names the Python block under the heading *title* defines."""
    section = README.split(f"### Recipe: {title}", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no Python block under the recipe {title!r}"
    names: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), names)  # noqa: S102 - our own README
    return names


class LosesReplies(LocalStorage):
    """Local storage whose next conditional write loses its reply, as Redis's does on a dropped connection.

    *applied* says whether the write landed before the reply was lost; *meanwhile* runs
    another agent's change right after, so the key has changed (what makes it unknown).
    """

    lose_next = False
    applied = True
    meanwhile: Callable[[], None] = staticmethod(lambda: None)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        if not self.lose_next:
            return super()._write_if(key, data, expected, ttl, consistency)
        type(self).lose_next = False
        if self.applied:
            super()._write_if(key, data, expected, ttl, consistency)
        self.meanwhile()
        raise OutcomeUnknown("the connection broke after the write was sent, and the key changed since")


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[tuple[LosesReplies, LocalStorage]]:
    path = str(tmp_path / "q.db")
    store = LosesReplies.from_options({"path": path})
    store.initialize()
    other = LocalStorage.from_options({"path": path})
    other.initialize()
    store.write("task_queue", {"tasks": [{"id": 1, "owner": None}, {"id": 2, "owner": None}]})
    yield store, other
    store.close()
    other.close()


def other_takes_task_2(other: LocalStorage) -> Callable[[], None]:
    def take() -> None:
        def mark(queue: Any) -> Any:
            queue["tasks"][1]["owner"] = "other"
            return queue

        other.update("task_queue", mark)

    return take


@pytest.mark.parametrize("applied", [True, False])
def test_the_task_queue_recipe_tells_a_landed_claim_from_a_lost_one(
    queue: tuple[LosesReplies, LocalStorage], applied: bool
) -> None:
    store, other = queue
    claim = recipe("`OutcomeUnknown` in a task queue")["claim"]
    LosesReplies.lose_next, LosesReplies.applied = True, applied
    LosesReplies.meanwhile = staticmethod(other_takes_task_2(other))
    try:
        task = claim(store, "w1")
    finally:
        LosesReplies.lose_next, LosesReplies.meanwhile = False, staticmethod(lambda: None)
    owners = [t["owner"] for t in store.read("task_queue")["tasks"]]
    if applied:
        assert task is not None
        assert task["id"] == 1
        assert owners[0] == task["owner"]
        assert owners[0].startswith("w1:")
    else:
        assert task is None, "a claim that did not land is not reported as taken"
        assert owners[0] is None
        assert claim(store, "w1")["id"] == 1, "claiming again takes the task, once"
    assert owners[1] == "other"


def test_the_recipe_without_a_lost_reply_claims_each_task_once(queue: tuple[LosesReplies, LocalStorage]) -> None:
    store, _ = queue
    claim = recipe("`OutcomeUnknown` in a task queue")["claim"]
    assert [claim(store, "w")["id"], claim(store, "w")["id"], claim(store, "w")] == [1, 2, None]
