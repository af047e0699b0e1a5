"""Suggestions ("did you mean ...?") for misspelled names in configs, URLs and plugin hooks."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of *choices* to *word*, or ``""`` when none is close."""
    if not isinstance(word, str):
        return ""
    import difflib  # noqa: PLC0415 - only on the error path: config.py and options.py import this module at start-up

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""
