"""Consistency levels a write can ask for; each backend documents what they buy."""

from __future__ import annotations

import enum


class Consistency(enum.StrEnum):
    """How sure a write must be before it returns.

    A ``StrEnum`` so the config's ``strong``/``eventual`` and the enum compare equal.
    """

    STRONG = "strong"
    EVENTUAL = "eventual"

    @classmethod
    def parse(cls, value: object) -> Consistency:
        """Accept a member or its string value; anything else is a ``ValueError``."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"consistency must be 'strong' or 'eventual' (or Consistency.*), got {value!r}") from None
