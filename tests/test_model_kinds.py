"""The model matrix: kinds of model people bring (hooks of every kind, DataParallel,
torch.compile, QAT, weight and spectral norm, tied and reused weights, in-place
ReLUs, eval/train/frozen modes, channels_last, float64, half precision, TorchScript,
grouped convs, tuple and dict outputs) times every engine function and the widget
constructors. Each call either works or is refused up front with a clear message,
and either way the model comes back bit-identical: values, dtypes, strides,
parameters and buffers, hooks, train/eval flags, requires_grad, ``.grad`` and
parametrizations.

Models are small (3x32x32 inputs), optimizations take one or two steps.
"""
from __future__ import annotations

import functools
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine

from model_state import assert_unchanged, snapshot

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = (3, 32, 32)
CLASSES = ["a", "b", "c", "d"]


class Net(nn.Module):
    """Two conv blocks (BatchNorm, in-place ReLU) and a linear head."""

    def __init__(self, groups: int = 1, returns: str = "tensor") -> None:
        super().__init__()
        self.returns = returns
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1, groups=groups), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(8, 4)
        self.boxes = nn.Linear(8, 2)

    def forward(self, x):
        pooled = self.features(x).mean(dim=(2, 3))
        if self.returns == "tuple":
            return self.boxes(pooled), self.head(pooled)
        if self.returns == "dict":
            return {"boxes": self.boxes(pooled), "scores": self.head(pooled)}
        return self.head(pooled)


class Reused(nn.Module):
    """One conv applied twice (the same module called two times in a forward pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.twice = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.stem(x), inplace=True)
        x = F.relu(self.twice(x))
        x = F.relu(self.twice(x))
        return self.head(x.mean(dim=(2, 3)))


class Tied(nn.Module):
    """Two convs sharing one weight tensor (tied weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.first = nn.Conv2d(8, 8, 3, padding=1)
        self.second = nn.Conv2d(8, 8, 3, padding=1)
        self.second.weight = self.first.weight
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.second(torch.relu(self.first(x))))
        return self.head(x.mean(dim=(2, 3)))


def _net(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return Net(**kwargs).train()


def _hooked(kinds: str) -> nn.Module:
    """A net with the user's own hooks of the given kinds on a conv, a ReLU and the net."""
    net = _net()
    net.calls = []
    record = lambda *args, **kwargs: net.calls.append(1)  # noqa: E731 - a hook that changes nothing
    for module in (net.features[0], net.features[2], net):
        if "forward" in kinds:
            module.register_forward_hook(lambda m, i, o: record())
            module.register_forward_pre_hook(lambda m, i: record())
            module.register_forward_hook(lambda m, a, k, o: record(), with_kwargs=True)
            module.register_forward_pre_hook(lambda m, a, k: record(), with_kwargs=True)
            module.register_forward_hook(lambda m, i, o: record(), always_call=True)
        if "backward" in kinds and not getattr(module, "inplace", False):
            # Not on the in-place ReLU: PyTorch itself refuses a full backward hook there (the
            # user's own training step fails with "BackwardHookFunction is a view ... modified inplace").
            module.register_full_backward_hook(lambda m, gi, go: record())
            module.register_full_backward_pre_hook(lambda m, go: record())
        if "state" in kinds:
            module._register_state_dict_hook(lambda *a: None)
            module.register_state_dict_pre_hook(lambda *a: None)
            module._register_load_state_dict_pre_hook(lambda *a: None)
            module.register_load_state_dict_post_hook(lambda *a: None)
    return net


def _legacy_backward_hook() -> nn.Module:
    net = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.features[4].register_backward_hook(lambda m, gi, go: None)
    return net


def _frozen_batchnorm_blocks() -> nn.Module:
    """The first block frozen (requires_grad False), BatchNorm still in train mode, .grad filled elsewhere."""
    net = _net()
    for param in net.features[:3].parameters():
        param.requires_grad_(False)
    net.head.weight.grad = torch.full_like(net.head.weight, 0.25)
    return net


def _all_frozen() -> nn.Module:
    net = _net()
    net.requires_grad_(False)
    return net


def _qat() -> nn.Module:
    import torch.ao.quantization as quantization

    torch.manual_seed(0)
    net = nn.Sequential(
        quantization.QuantStub(), nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
        quantization.DeQuantStub(),
    )
    net.qconfig = quantization.get_default_qat_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.prepare_qat(net.train(), inplace=True)
    net(torch.rand(2, *SIZE))  # the observers have seen something
    return net


def _weight_norm() -> nn.Module:
    net = _net()
    net.features[0] = nn.utils.parametrizations.weight_norm(net.features[0])
    net.features[4] = nn.utils.parametrizations.weight_norm(net.features[4])
    return net


def _spectral_norm() -> nn.Module:
    net = _net()
    net.features[0] = nn.utils.parametrizations.spectral_norm(net.features[0])
    net.features[4] = nn.utils.parametrizations.spectral_norm(net.features[4])
    return net.train()  # power iterations run in train mode: they must not run for us


def _data_parallel() -> nn.Module:
    return nn.DataParallel(_net())


def _compiled() -> nn.Module:
    """A torch.compile wrapper. The library reads the module it wraps (models.uncompiled): hooks
    would force recompiles, and compiling even this small net takes minutes on a busy CPU,
    so no call here compiles anything; the wrapper must come back unchanged all the same."""
    return torch.compile(_net().eval())


def _scripted() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(net.eval())


def _seeded(make):
    @functools.wraps(make)
    def build():
        torch.manual_seed(0)
        return make()
    return build


KINDS = {
    "forward hooks (plain, pre, with kwargs, always called)": lambda: _hooked("forward"),
    "backward hooks (full, full pre)": lambda: _hooked("backward"),
    "state_dict and load_state_dict hooks": lambda: _hooked("state"),
    "user hooks of every kind at once": lambda: _hooked("forward backward state"),
    "legacy backward hook (register_backward_hook)": _legacy_backward_hook,
    "eval mode": lambda: _net().eval(),
    "train mode with BatchNorm": lambda: _net().train(),
    "frozen block, BatchNorm in train mode, .grad filled": _frozen_batchnorm_blocks,
    "requires_grad=False everywhere": _all_frozen,
    "channels_last": lambda: _net().to(memory_format=torch.channels_last),
    "float64": lambda: _net().double(),
    "float16": lambda: _net().half(),
    "grouped and depthwise convs": lambda: _net(groups=8),
    "tuple output (output=1)": lambda: _net(returns="tuple"),
    "dict output (output='scores')": lambda: _net(returns="dict"),
    "a conv used twice, functional in-place ReLU": _seeded(Reused),
    "tied weights (two convs, one tensor)": _seeded(Tied),
    "weight_norm parametrization": _weight_norm,
    "spectral_norm parametrization (train mode)": _spectral_norm,
    "QAT-prepared (torch.ao.quantization)": _qat,
    "nn.DataParallel on the CPU": _data_parallel,
    "torch.compile": _compiled,
    "TorchScript (torch.jit.script)": _scripted,
}
OUTPUTS = {"tuple output (output=1)": 1, "dict output (output='scores')": "scores"}


def _load(kind: str, net: nn.Module) -> cw.Model:
    return cw.load_model(net, input_size=SIZE, classes=CLASSES, output=OUTPUTS.get(kind))


IMAGE = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0)).numpy()
DATASET = torch.rand(6, *SIZE, generator=torch.Generator().manual_seed(1))


def _settled(widget):
    if hasattr(widget, "wait"):
        widget.wait()
    assert not getattr(widget, "error", ""), widget.error
    return widget


FUNCTIONS = {
    "load_model and layers": lambda model: model.layers,
    "feature_maps": lambda model: engine.feature_maps(model, IMAGE, cache=False),
    "filter_weights": lambda model: engine.filter_weights(model, -1),
    "cam gradcam": lambda model: engine.cam(model, IMAGE, "gradcam"),
    "cam scorecam": lambda model: engine.cam(model, IMAGE, "scorecam"),
    "cam guided_backprop": lambda model: engine.cam(model, IMAGE, "guided_backprop"),
    "predict": lambda model: engine.predict(model, IMAGE, k=2),
    "maximize": lambda model: engine.maximize(model, 0, [0, 1], steps=2, size=32),
    "dream": lambda model: engine.dream(model, IMAGE, -1, octaves=1, steps=1),
    "dataset_examples (examples scan)": lambda model: engine.dataset_examples(model, DATASET, k=2, cache=False),
    "convolution_at": lambda model: engine.convolution_at(model, IMAGE, filter=1, position=(3, 4)),
    "receptive_fields": lambda model: engine.receptive_fields(model),
    "sanity_check": lambda model: engine.sanity_check(model, IMAGE, steps=2),
    "faithfulness": lambda model: engine.faithfulness(model, IMAGE, percentiles=(50,)),
    "widgets ActivationMaximization, DeepDream, ConvolutionExplainer, DatasetExamples": lambda model: [
        cw.ActivationMaximization(model, steps=1, size=16), cw.DeepDream(model, IMAGE, steps=1, octaves=1, frames=1),
        _settled(cw.ConvolutionExplainer(model, IMAGE)), _settled(cw.DatasetExamples(model, DATASET, k=2)),
    ],
    "widgets FeatureMaps, FilterWeights, GradCAM": lambda model: [
        _settled(cw.FeatureMaps(model, IMAGE)), _settled(cw.FilterWeights(model)), _settled(cw.GradCAM(model, IMAGE))
    ],
}

# Kinds the library refuses up front, with the message it gives (nothing else is allowed to fail).
# TorchScript runs compiled code that calls no Python hooks: no layer output can be read.
REFUSED: dict[tuple[str, str], str] = {
    ("TorchScript (torch.jit.script)", function): r"is a TorchScript model .*Pass the original nn.Module instead" for function in FUNCTIONS
}


def full_snapshot(module: nn.Module) -> dict:
    """model_state.snapshot plus dtypes and strides of every tensor, module classes
    (a parametrization removed or added shows) and the parametrized tensors' originals."""
    state = module.state_dict(keep_vars=True)
    return {
        "base": snapshot(module),
        "tensors": {name: (value.dtype, value.shape, value.stride(), value.device) for name, value in state.items()},
        "classes": {name: type(sub).__name__ for name, sub in module.named_modules()},
        "parametrized": {name: sorted(getattr(sub, "parametrizations", {}).keys()) for name, sub in module.named_modules()},
    }


def assert_same(module: nn.Module, before: dict) -> None:
    after = full_snapshot(module)
    for part in ("classes", "parametrized", "tensors"):
        assert after[part] == before[part], f"{part} changed"
    assert_unchanged(module, before["base"])


@functools.lru_cache(maxsize=None)
def _net_of(kind: str) -> nn.Module:
    return KINDS[kind]()


CASES = [(kind, function) for kind in KINDS for function in FUNCTIONS]


@pytest.mark.parametrize("kind, function", CASES, ids=[f"{kind} x {function}" for kind, function in CASES])
def test_every_function_works_or_refuses_and_the_model_comes_back_identical(kind, function):
    net = _net_of(kind)
    before = full_snapshot(net)
    refused = REFUSED.get((kind, function))
    if refused:
        with pytest.raises((ValueError, TypeError), match=refused):
            FUNCTIONS[function](_load(kind, net))
    else:
        FUNCTIONS[function](_load(kind, net))
    assert_same(net, before)


def test_a_compiled_model_is_read_through_the_module_it_wraps():
    compiled = _compiled()
    model = cw.load_model(compiled, input_size=SIZE)
    assert model.module is compiled._orig_mod
    assert engine.feature_maps(compiled, IMAGE, cache=False).keys() == engine.feature_maps(compiled._orig_mod, IMAGE, cache=False).keys()


def test_the_snapshot_sees_what_the_matrix_protects():
    """The comparison can fail: a changed dtype, stride, parametrization or hook shows."""
    for change, message in (
        (lambda net: net.double(), "changed"),
        (lambda net: net.to(memory_format=torch.channels_last), "changed"),
        (lambda net: nn.utils.parametrize.remove_parametrizations(net.features[0], "weight"), "changed"),
        (lambda net: net.features[0].register_forward_hook(lambda *a: None), "hooks changed"),
        (lambda net: net.features[1].eval(), "training changed"),
    ):
        net = _weight_norm()
        before = full_snapshot(net)
        change(net)
        with pytest.raises(AssertionError, match=message):
            assert_same(net, before)


def test_the_matrix_has_the_kinds_the_issue_asks_for():
    assert len(KINDS) >= 20
    print(f"\nmodel matrix: {len(KINDS)} kinds x {len(FUNCTIONS)} functions = {len(CASES)} cases, {len(REFUSED)} refused up front")
    for words in ("hooks of every kind", "DataParallel", "torch.compile", "QAT", "weight_norm", "spectral_norm", "tied", "used twice",
                  "channels_last", "float64", "float16", "grouped", "tuple", "dict", "TorchScript", "requires_grad=False"):
        assert any(re.search(re.escape(words), kind) for kind in KINDS), words
