"""Which part of a model's output holds the class scores.

A forward pass may return one tensor, a tuple or list (a detection-style head
with boxes and scores), a dict, or a Hugging Face ``ModelOutput``. The class
scores are taken without asking when that is unambiguous (the tensor itself,
``.logits``, or the only (N, classes) tensor among several); otherwise the
``output=`` selector of :func:`cnn_widgets.load_model` says where they are:
an index, a key, or a callable that takes the whole output.
"""
from __future__ import annotations

from typing import Any, Callable, Union

import torch

OutputSelector = Union[int, str, Callable[[Any], torch.Tensor], None]


class AmbiguousOutputError(ValueError):
    """The model returns several candidates for its class scores and no ``output=`` says which."""


def check_selector(output: OutputSelector) -> OutputSelector:
    """Validate an ``output=`` selector up front: None, an index, a key or a callable.

    >>> check_selector(1), check_selector("logits")
    (1, 'logits')
    """
    if output is None or callable(output) or isinstance(output, str):
        return output
    if isinstance(output, int) and not isinstance(output, bool):
        return output
    raise TypeError(
        f"output must be an index (for a tuple), a key (for a dict or ModelOutput) or a callable "
        f"that takes the model's output and returns the class scores, not {type(output).__name__}"
    )


def describe(output: Any) -> str:
    """A short description of a forward pass's output, for error messages.

    >>> describe((torch.zeros(1, 4), torch.zeros(1, 5)))
    'a tuple of 2: [0] tensor (1, 4), [1] tensor (1, 5)'
    """
    if isinstance(output, torch.Tensor):
        return f"tensor {tuple(output.shape)}"
    items = _items(output)
    if items is None:
        return type(output).__name__
    kind = type(output).__name__
    parts = [f"[{key!r}]" if isinstance(key, str) else f"[{key}]" for key, _ in items]
    parts = [f"{part} {describe(value) if isinstance(value, torch.Tensor) else type(value).__name__}" for part, (_, value) in zip(parts, items)]
    return f"a {kind} of {len(items)}: " + ", ".join(parts)


def class_scores(output: Any, selector: OutputSelector = None, model_name: str = "the model") -> torch.Tensor:
    """The (N, classes) class-score tensor in a forward pass's ``output``.

    >>> class_scores((torch.zeros(1, 4), torch.ones(1, 5)), 1).shape
    torch.Size([1, 5])
    >>> class_scores({"boxes": torch.zeros(1, 7, 4), "scores": torch.ones(1, 5)}).shape
    torch.Size([1, 5])
    """
    if selector is not None:
        scores = _select(output, selector, model_name)
    else:
        scores = _unambiguous(output, model_name)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        shape = describe(scores)
        raise ValueError(
            f"the class scores of {model_name} must be a tensor (N, classes); "
            f"{'the output= selector gave' if selector is not None else 'its output is'} {shape}"
        )
    return scores


def _items(output: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(output, dict):  # dict and ModelOutput (an OrderedDict)
        return list(output.items())
    if isinstance(output, (tuple, list)):
        return list(enumerate(output))
    return None


_ONE_TENSOR = "; it returns one tensor, the class scores: pass output=None"


def _select(output: Any, selector: OutputSelector, model_name: str) -> Any:
    if callable(selector) and not isinstance(selector, (str, int)):
        try:
            return selector(output)
        except Exception as error:
            raise ValueError(f"the output= callable failed on what {model_name} returns ({describe(output)}): {error}") from error
    items = _items(output)
    if isinstance(selector, str):
        if isinstance(output, dict) and selector in output:
            return output[selector]
        if not isinstance(output, (dict, tuple, list, torch.Tensor)) and isinstance(getattr(output, selector, None), torch.Tensor):
            return getattr(output, selector)
        keys = [key for key, _ in items] if isinstance(output, dict) else []
        raise ValueError(
            f"output={selector!r}: {model_name} returns {describe(output)}, which has no key {selector!r}"
            + (f"; valid keys: {', '.join(map(repr, keys))}" if keys else _ONE_TENSOR if isinstance(output, torch.Tensor) else "")
        )
    if items is not None and not isinstance(output, dict):
        if -len(items) <= selector < len(items):
            return output[selector]
        raise ValueError(f"output={selector}: {model_name} returns {describe(output)}; valid indices: 0-{len(items) - 1}")
    if isinstance(output, dict):
        keys = list(output)
        if -len(keys) <= selector < len(keys):
            return output[keys[selector]]
    raise ValueError(f"output={selector}: {model_name} returns {describe(output)}, which cannot be indexed by {selector}"
                     + (_ONE_TENSOR if isinstance(output, torch.Tensor) else ""))


def _unambiguous(output: Any, model_name: str) -> Any:
    if isinstance(output, torch.Tensor):
        return output
    logits = output.get("logits") if isinstance(output, dict) else getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):  # Hugging Face ModelOutput, torchvision's GoogLeNet/Inception outputs
        return logits
    items = _items(output)
    if items is None:
        raise ValueError(
            f"{model_name} returns {describe(output)}, not class scores; pass output= to load_model "
            "(a callable that takes this output and returns the (N, classes) tensor)"
        )
    candidates = [(key, value) for key, value in items if isinstance(value, torch.Tensor) and value.dim() == 2]
    if len(candidates) == 1:
        return candidates[0][1]
    example = repr(candidates[-1][0]) if candidates else (repr(items[0][0]) if items else "0")
    raise AmbiguousOutputError(
        f"{model_name} returns {describe(output)}; it is not clear which one holds the class scores. "
        f"Say which with load_model(..., output={example}) (an index, a key, or a callable that takes the output "
        "and returns the (N, classes) tensor)"
    )
