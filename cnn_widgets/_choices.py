"""Errors for bad choices that name the valid ones (and the closest to a typo)."""
from __future__ import annotations

import difflib
from typing import Iterable


def invalid_choice(what: str, value: object, choices: Iterable[object], limit: int | None = None) -> ValueError:
    """A ``ValueError`` for ``value`` that lists the valid ``choices`` and close matches.

    >>> str(invalid_choice("colormap", "virdis", ["gray", "viridis"]))
    "unknown colormap 'virdis'; did you mean 'viridis'? Valid choices: gray, viridis"
    """
    names = [str(choice) for choice in choices]
    message = f"unknown {what} {value!r}"
    close = difflib.get_close_matches(str(value), names, n=3, cutoff=0.6)
    if close:
        quoted = [repr(name) for name in close]
        message += "; did you mean " + (" or ".join(quoted) if len(quoted) <= 2 else ", ".join(quoted[:-1]) + " or " + quoted[-1]) + "?"
    else:
        message += ";"
    shown = names if limit is None or len(names) <= limit else names[:limit] + [f"... ({len(names) - limit} more)"]
    message += " Valid choices: " + ", ".join(shown)
    return ValueError(message)
