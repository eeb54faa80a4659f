"""Guided backpropagation's ReLU: the forward pass unchanged, the backward pass
keeping only positive gradients where the ReLU was active (Springenberg et al., 2015).

The override is a :class:`torch.overrides.TorchFunctionMode`, not module hooks:
it catches every ReLU call made while the block runs (``nn.ReLU`` modules,
``F.relu``, ``torch.relu``, ``Tensor.relu`` and their in-place forms), so a
module called several times in one pass (ResNet's shared ``relu``) and
functional ReLUs in a hand-written ``forward`` are both guided. Nothing is
registered on the model, the mode lives only in the calling thread, and
leaving the ``with`` block, normally or by an exception, ends it.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0)


class _GuidedReLUInplace(_GuidedReLU):
    """The in-place form, so code that relies on ``relu_`` changing its input still works
    (the same guided backward pass)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x.clamp_(min=0)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return x


_OUT_OF_PLACE = {F.relu, torch.relu, torch.Tensor.relu}
_IN_PLACE = {torch.relu_, torch.Tensor.relu_}
if hasattr(F, "relu_"):
    _IN_PLACE.add(F.relu_)


class _GuidedMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _OUT_OF_PLACE or func in _IN_PLACE:
            x = args[0]
            inplace = func in _IN_PLACE or bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            if inplace and not (x.requires_grad and x.is_leaf):
                return _GuidedReLUInplace.apply(x)
            return _GuidedReLU.apply(x)
        return func(*args, **kwargs)


@contextlib.contextmanager
def guided_relus() -> Iterator[None]:
    """Within the block, every ReLU passes only positive gradients back (guided backpropagation).

    >>> x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    >>> with guided_relus():
    ...     y = torch.relu(x)
    >>> torch.autograd.grad((y * torch.tensor([5.0, 5.0, -5.0])).sum(), x)[0].tolist()
    [0.0, 5.0, 0.0]
    """
    with _GuidedMode():
        yield
