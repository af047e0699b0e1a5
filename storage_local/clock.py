"""The clock the local backend judges leases by: the host's monotonic clock, tagged with the boot.

Every process of one host reads the same ``CLOCK_MONOTONIC`` (it counts from boot, for
the whole system), and the database lives on that host (SQLite's WAL needs a local
filesystem), so every process judges a lease against one clock. Unlike the wall clock,
it never jumps: an NTP step or an operator's ``date -s`` cannot make a lease expire early
(two holders) or late. It restarts at a reboot, so each lease row also records the boot
it was granted in: a lease from an earlier boot is expired, its holder having died with
that boot. The token counter is never reset, by a reboot or anything else.
"""

from __future__ import annotations

import time
import uuid

__all__ = ["BOOT_ID", "now"]

_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def _boot_id() -> str:
    """Linux's id of this boot; elsewhere, the wall-clock time of boot rounded to a minute."""
    try:
        with open(_BOOT_ID_FILE, encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        # Rounded, since wall clock minus monotonic clock drifts by the clock's corrections.
        booted = round((time.time() - time.monotonic()) / 60)
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"boot-{booted}"))


BOOT_ID = _boot_id()
now = time.monotonic
