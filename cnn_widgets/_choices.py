"""Errors for bad choices that name the valid ones (and the closest to a typo)."""
from __future__ import annotations

import difflib
import inspect
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


def check_keywords(cls: type, kwargs: dict) -> None:
    """Refuse keyword arguments that ``cls`` neither has as a trait nor takes in its
    constructor (a misspelling would otherwise be dropped with a warning), naming the
    closest valid ones.

    >>> import cnn_widgets as cw
    >>> check_keywords(cw.GradCAM, {"metod": "scorecam"})
    Traceback (most recent call last):
    ...
    TypeError: GradCAM() got an unexpected keyword argument 'metod'; did you mean 'method' or 'model'?
    """
    traits = set(cls.class_trait_names()) if hasattr(cls, "class_trait_names") else set()
    unknown = [name for name in kwargs if name not in traits]
    if not unknown:
        return
    parameters = {name for klass in cls.__mro__ if "__init__" in vars(klass)
                  for name in inspect.signature(vars(klass)["__init__"]).parameters}
    choices = sorted(name for name in traits | parameters if not name.startswith("_") and name not in ("self", "args", "kwargs"))
    close = difflib.get_close_matches(unknown[0], choices, n=3, cutoff=0.6)
    hint = "; did you mean " + " or ".join(repr(name) for name in close) + "?" if close else ""
    raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unknown[0]!r}{hint}")
