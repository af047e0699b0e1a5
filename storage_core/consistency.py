"""Consistency levels a write can ask for; each backend documents what they buy."""

from __future__ import annotations

import enum

from storage_core.errors import InvalidArgument


class Consistency(enum.StrEnum):
    """How sure a write must be before it returns.

    A ``StrEnum`` so the config's ``strong``/``eventual`` and the enum compare equal.
    """

    STRONG = "strong"
    EVENTUAL = "eventual"

    @classmethod
    def parse(cls, value: object) -> Consistency:
        """Accept a member or its string value; anything else is ``InvalidArgument`` (a ``ValueError``)."""
        if type(value) is cls:
            return value
        # A plain dict lookup: Enum's own constructor costs more than the rest of a write call.
        found = _BY_VALUE.get(value) if isinstance(value, str) else None
        if found is None:
            raise InvalidArgument(f"consistency must be 'strong' or 'eventual' (or Consistency.*), got {value!r}")
        return found


_BY_VALUE: dict[str, Consistency] = {level.value: level for level in Consistency}
