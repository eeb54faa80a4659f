"""Helpers for the model-unchanged guarantee: a user model with every kind of
state a careless library could disturb, and a deep snapshot to compare against."""
from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """A small CNN with BatchNorm (buffers), an in-place ReLU and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))


def make_user_model() -> nn.Module:
    """A model in the state a user might leave it: training mode, a frozen
    parameter, a filled .grad and a hook of their own."""
    torch.manual_seed(0)
    net = TinyNet().train()
    net.features[0].bias.requires_grad_(False)
    net.head.weight.grad = torch.full_like(net.head.weight, 0.5)
    net.calls = []
    net.features[4].register_forward_hook(lambda m, i, o: net.calls.append(1))
    return net


# Every hook dictionary a module has in this version of torch (forward, forward-pre, with kwargs,
# always-called, backward, backward-pre, state_dict and load_state_dict hooks): read from torch,
# not copied from the library, so a kind of hook that preserved() forgets shows up here.
HOOK_DICTS = tuple(sorted(name for name, value in vars(nn.Module()).items() if "hook" in name and isinstance(value, dict)))


def snapshot(module: nn.Module) -> dict:
    """Everything the model-unchanged guarantee covers, deep-copied."""
    return {
        "state": {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()},
        "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in module.named_parameters()},
        "grad_ids": {n: id(p.grad) for n, p in module.named_parameters()},
        "param_ids": {n: id(p) for n, p in module.named_parameters()},
        "training": {n: m.training for n, m in module.named_modules()},
        # Which hooks (by handle id, in order) and which functions: a hook swapped for another shows.
        "hooks": {
            n: tuple((name, tuple(getattr(m, name).items())) for name in HOOK_DICTS) + (getattr(m, "_is_full_backward_hook", None),)
            for n, m in module.named_modules()
        },
        "devices": {n: p.device for n, p in module.named_parameters()},
        "layout": {n: (p.data_ptr(), p.stride()) for n, p in module.named_parameters()},  # same storage, same strides
    }


def assert_unchanged(module: nn.Module, before: dict) -> None:
    after = snapshot(module)
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), f"{key} changed"
    for part in ("requires_grad", "grad_ids", "param_ids", "training", "hooks", "devices", "layout"):
        assert after[part] == before[part], f"{part} changed"
    for key, grad in before["grads"].items():
        if grad is None:
            assert after["grads"][key] is None, f"{key}.grad appeared"
        else:
            assert torch.equal(after["grads"][key], grad), f"{key}.grad changed"
