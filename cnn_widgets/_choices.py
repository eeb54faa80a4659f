"""Errors for bad choices that name the valid ones (and the closest to a typo)."""
from __future__ import annotations

import difflib
import inspect
import math
import numbers
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


def check_int(what: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int if it is a whole number (a NumPy integer too, never a bool or a
    fraction) within ``low``..``high``; else an error that names ``what`` and the valid range.

    >>> check_int("steps", 3, low=1)
    3
    >>> check_int("steps", 0, low=1)
    Traceback (most recent call last):
    ...
    ValueError: steps must be an integer >= 1, got 0
    """
    valid = _int_range(low, high)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be {valid}, got {_shown(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{what} must be {valid}, got {value}")
    return value


def check_real(what: str, value: object, low: float | None = None, high: float | None = None, low_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number (not a bool) within ``low``..``high``
    (above ``low`` with ``low_open``); else an error that names ``what`` and the valid range.

    >>> check_real("lr", float("nan"), low=0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0, got nan
    """
    bounds = [f"{'>' if low_open else '>='} {low:g}"] if low is not None else []
    bounds += [f"<= {high:g}"] if high is not None else []
    valid = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be {valid}, got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) or (high is not None and value > high):
        raise ValueError(f"{what} must be {valid}, got {value!r}")
    return value


def _int_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer from {low} to {high}"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def _shown(value: object) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"
