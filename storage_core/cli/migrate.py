"""``storage migrate --from SRC --to DST``: copy every key with its value and remaining TTL.

Streaming in constant memory: keys are listed page by page and copied in batches
(``read_many_with_ttl`` on the source, ``write_many`` on the destination), so a million
keys need no more memory than a thousand.

Resumable: after each batch the destination gets a checkpoint key
(``storage-migrate:<id>``, id from the source and the prefix) naming the last key copied.
A rerun of the same command finds it and, when the source lists keys in order
(``Capability.ORDERED_KEYS``, as local does), skips every key up to it without reading
a value; from a source listing in no fixed order (Redis SCAN), it reads each batch from
both sides and writes only what the destination lacks or holds differently. The
checkpoint is written only after its batch, so a kill at any instant never skips a key.
It is removed once the copy is verified, and expires after a week if abandoned.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from storage_core.capabilities import Capability
from storage_core.cli._args import Commands, add_command, add_consistency_option, count, nonempty
from storage_core.cli._batches import chunks, write_batch
from storage_core.cli._errors import EXIT_OK, CommandError
from storage_core.cli._output import note, out
from storage_core.cli._progress import Progress, on_terminal
from storage_core.factory import open_storage
from storage_core.storage import Storage

CHECKPOINTS = "storage-migrate:"
"""Keys under this prefix are migrate's own bookkeeping: never copied, never verified."""

_CHECKPOINT_TTL = 7 * 86400.0
_DEFAULT_BATCH = 1000
_EXAMPLES_SHOWN = 5


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "migrate",
        run,
        "Copy every key starting with PREFIX, with its value and remaining TTL, from SRC to DST "
        "(each an agent.yaml or a URL), in batches and in constant memory; then verify that "
        "both hold the same keys and values. Interrupted (Ctrl-C, a killed process), the same "
        "command resumes after the last batch copied. Exits 1 if verification finds a difference.",
        examples=[
            "storage migrate --from agent.yaml --to redis://localhost:6379/0",
            "storage migrate --from local:///var/lib/agent/state.db --to redis://db:6379/0 --prefix agent: --dry-run",
        ],
    )
    parser.add_argument("--from", dest="source", required=True, type=nonempty, metavar="SRC", help="copy from")
    parser.add_argument("--to", dest="destination", required=True, type=nonempty, metavar="DST", help="copy to")
    parser.add_argument("--prefix", default="", metavar="P", help="only the keys starting with P (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="open both stores, count the keys, write nothing")
    parser.add_argument("--batch", type=count, default=_DEFAULT_BATCH, metavar="N", help="keys per round trip")
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint of an interrupted run")
    parser.add_argument("--no-verify", action="store_true", help="skip the verify pass")
    add_consistency_option(parser)


@dataclass(frozen=True)
class _Plan:
    source: Storage
    destination: Storage
    prefix: str
    batch: int
    consistency: str | None

    @property
    def checkpoint_key(self) -> str:
        import hashlib  # noqa: PLC0415 - OpenSSL's loading is most of hashlib's import time

        identity = hashlib.sha256(f"{self.source!r}\0{self.prefix}".encode()).hexdigest()[:16]
        return f"{CHECKPOINTS}{identity}"

    def source_keys(self) -> Iterator[str]:
        return (key for key in self.source.keys(self.prefix) if not key.startswith(CHECKPOINTS))


def run(args: argparse.Namespace) -> int:
    if args.batch == 0:
        raise CommandError("--batch must be at least 1")
    with open_storage(args.source) as source, open_storage(args.destination) as destination:
        if repr(source) == repr(destination):
            raise CommandError(f"--from and --to name the same store ({source!r}); nothing to copy")
        if not source.supports(Capability.READ_TTL):
            raise CommandError(
                f"the {source.name!r} backend cannot report expiries ({Capability.READ_TTL}), "
                "so a copy would lose every TTL; export and import values another way"
            )
        plan = _Plan(source, destination, args.prefix, args.batch, args.consistency)
        checkpoint = None if args.restart else destination.get(plan.checkpoint_key)
        if args.dry_run:
            return _dry_run(plan, checkpoint)
        copied = _copy(plan, checkpoint)
        if not args.no_verify:
            _verify(plan)
        destination.delete(plan.checkpoint_key)
    out(f"done: {copied} keys copied")
    return EXIT_OK


def _dry_run(plan: _Plan, checkpoint: dict[str, Any] | None) -> int:
    total = sum(1 for _ in plan.source_keys())
    out(f"dry run: would copy {total} keys from {plan.source!r} to {plan.destination!r} in batches of {plan.batch}")
    if checkpoint is not None:
        out(f"dry run: an interrupted run copied {checkpoint['copied']} keys; it would resume after them")
    return EXIT_OK


def _copy(plan: _Plan, checkpoint: dict[str, Any] | None) -> int:
    """Copy the keys the checkpoint does not cover; return how many keys are copied in all."""
    source, destination = plan.source, plan.destination
    ordered = source.supports(Capability.ORDERED_KEYS)
    keys = plan.source_keys()
    before = 0
    if checkpoint is not None:
        before = checkpoint["copied"]
        note(f"resuming an interrupted migration: {before} keys were copied (--restart copies everything again)")
        if ordered and checkpoint["after"] is not None:
            after: str = checkpoint["after"]
            keys = itertools.dropwhile(lambda key: key <= after, keys)
    compare = checkpoint is not None and not ordered
    total = _total_for_a_bar(plan)
    copied = with_ttl = 0
    progress = Progress("copy", total, unit="keys")
    try:
        with progress:
            if total is not None and ordered:
                progress.advance(min(before, total))
            for batch in chunks(keys, plan.batch):
                found = source.read_many_with_ttl(batch)
                if compare:
                    there = destination.read_many(list(found))
                    found = {k: v for k, v in found.items() if k not in there or not _same(there[k], v[0])}
                items = [(key, value, ttl) for key, (value, ttl) in found.items()]
                write_batch(destination, items, consistency=plan.consistency)
                copied += len(items)
                with_ttl += sum(1 for _, _, ttl in items if ttl is not None)
                # Only after the batch is written: a kill before this line redoes the batch, never skips it.
                destination.write(
                    plan.checkpoint_key,
                    {"source": repr(source), "prefix": plan.prefix, "after": batch[-1], "copied": before + copied},
                    ttl=_CHECKPOINT_TTL,
                )
                progress.advance(len(batch))
    except KeyboardInterrupt:
        note(f"interrupted after {before + copied} keys were copied; run the same command again to resume")
        raise
    out(f"copied {copied} keys ({with_ttl} with a TTL) in {progress.elapsed:.1f} s ({progress.rate:,.0f} keys/s)")
    return before + copied


def _verify(plan: _Plan) -> None:
    """Compare both sides: every source key present in the destination with the same value, and the counts."""
    source, destination = plan.source, plan.destination
    checked = 0
    missing: list[str] = []
    different: list[str] = []
    with Progress("verify", _total_for_a_bar(plan), unit="keys") as progress:
        for batch in chunks(plan.source_keys(), plan.batch):
            # The destination first: its copy expires no sooner than the source, so a key
            # expiring meanwhile is gone from both rather than reported missing.
            there = destination.read_many(batch)
            here = source.read_many(batch)
            for key, value in here.items():
                if key not in there:
                    missing.append(key)
                elif not _same(value, there[key]):
                    different.append(key)
            checked += len(here)
            progress.advance(len(batch))
    held = sum(1 for key in destination.keys(plan.prefix) if not key.startswith(CHECKPOINTS))
    out(
        f"verified: {checked} keys in the source, {held} in the destination; "
        f"{len(missing)} missing, {len(different)} different"
    )
    if missing or different:
        shown = ", ".join(repr(key) for key in (missing + different)[:_EXAMPLES_SHOWN])
        raise CommandError(
            f"verify failed: {len(missing)} keys missing and {len(different)} different in the destination "
            f"(e.g. {shown}); was the source written meanwhile? Run migrate again to copy them"
        )
    if held > checked:
        note(f"the destination also holds {held - checked} keys the source does not (left as they are)")


def _total_for_a_bar(plan: _Plan) -> int | None:
    """The number of source keys, counted (a listing, no values) only when a person watches a bar."""
    return sum(1 for _ in plan.source_keys()) if on_terminal() else None


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``True == 1`` and ``1 == 1.0`` in Python, not in a store."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)
