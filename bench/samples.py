"""The values both benchmarks store: the same records, so their figures compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SHAPES", "flat_state", "nested_state"]


def flat_state(i: int, rev: int) -> dict[str, Any]:
    """A flat record of a few fields (about 80 bytes of JSON)."""
    return {"agent": f"agent-{i % 7}", "step": i, "rev": rev, "status": "running", "score": i / 3}


def nested_state(i: int, rev: int) -> dict[str, Any]:
    """A typical agent record with a nested task list (about 400 bytes of JSON, 40 JSON values)."""
    return {
        "agent": f"agent-{i % 7}",
        "step": i,
        "rev": rev,
        "status": "running",
        "score": i / 3,
        "tasks": [{"id": i * 10 + t, "name": f"task {t}", "done": t % 2 == 0} for t in range(8)],
        "notes": None,
    }


SHAPES: dict[str, Callable[[int, int], dict[str, Any]]] = {"nested": nested_state, "flat": flat_state}
