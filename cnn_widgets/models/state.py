"""The one place that guarantees a user's model comes back exactly as it was.

Every engine function runs inside :func:`preserved`. On the way out, whether
the call returned or raised, the module has again the same train/eval mode per
submodule, the same ``requires_grad`` flags, the same ``.grad`` tensors, the
same registered hooks, the same buffer values and the same device, and its
parameters were never written. The engine turns parameter gradients off for
the duration, so backward passes to the input neither fill ``.grad`` nor pay
for weight gradients.
"""
from __future__ import annotations

import collections
import contextlib
import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

# Hook dictionaries an nn.Module keeps; anything the engine registers lands in one
# of these, and whatever is there on exit that was not there on entry is removed.
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@dataclass
class _Snapshot:
    training: dict[nn.Module, bool] = field(default_factory=dict)
    hooks: dict[tuple[nn.Module, str], dict] = field(default_factory=dict)
    requires_grad: dict[nn.Parameter, bool] = field(default_factory=dict)
    grads: dict[nn.Parameter, torch.Tensor | None] = field(default_factory=dict)
    param_versions: dict[nn.Parameter, tuple[int, torch.device]] = field(default_factory=dict)
    buffers: dict[tuple[nn.Module, str], tuple[torch.Tensor, int, torch.Tensor]] = field(default_factory=dict)
    full_hooks: dict[nn.Module, object] = field(default_factory=dict)


def _take(module: nn.Module) -> _Snapshot:
    snap = _Snapshot()
    for sub in module.modules():
        snap.training[sub] = sub.training
        snap.full_hooks[sub] = getattr(sub, "_is_full_backward_hook", None)
        for name in _HOOK_DICTS:
            hooks = getattr(sub, name, None)
            if hooks is not None:
                snap.hooks[(sub, name)] = dict(hooks)
        for name, buffer in sub.named_buffers(recurse=False):
            if buffer is not None:
                snap.buffers[(sub, name)] = (buffer, buffer._version, buffer.detach().clone())
    for param in module.parameters():
        snap.requires_grad[param] = param.requires_grad
        snap.grads[param] = param.grad
        snap.param_versions[param] = (param._version, param.device)
    return snap


def _restore(module: nn.Module, snap: _Snapshot) -> None:
    """Put back every part of the snapshot. Each part is restored on its own, so one
    that cannot be (a buffer the forward pass resized in a way that cannot be undone)
    leaves the others restored; then one error says what could not be."""
    failures: list[str] = []

    def attempt(what: str, action) -> None:
        try:
            action()
        except Exception as error:  # restore everything else first, report at the end
            failures.append(f"{what}: {error}")

    def check_param(param, version, device) -> None:
        if param.device != device:
            param.data = param.data.to(device)
        elif param._version != version:  # pragma: no cover - would be an engine bug
            raise RuntimeError(
                "cnn-widgets internal error: a parameter of the model was modified in place; "
                "please report this with the call that caused it"
            )

    def restore_buffer(sub, name, buffer, version, saved) -> None:
        # A move to the compute device replaced the dict entry, not the tensor.
        sub._buffers[name] = buffer
        with torch.no_grad():
            if buffer.shape != saved.shape:  # resized during the forward pass (resize_, .data =)
                buffer.data = saved
            # By value too: fused fake-quant observers (QAT) write buffers without bumping their version.
            elif buffer._version != version or not torch.equal(buffer, saved):
                buffer.copy_(saved)

    def restore_hooks(sub, name, hooks) -> None:
        current = getattr(sub, name)
        for key in list(current.keys()):
            if key not in hooks:
                del current[key]
        for key, hook in hooks.items():
            current[key] = hook

    for param, (version, device) in snap.param_versions.items():
        attempt("a parameter", lambda param=param, version=version, device=device: check_param(param, version, device))
    for param, flag in snap.requires_grad.items():
        attempt("requires_grad", lambda param=param, flag=flag: param.requires_grad_(flag))
    for param, grad in snap.grads.items():
        attempt(".grad", lambda param=param, grad=grad: setattr(param, "grad", grad))
    for (sub, name), (buffer, version, saved) in snap.buffers.items():
        attempt(f"buffer {name!r}", lambda sub=sub, name=name, buffer=buffer, version=version, saved=saved: restore_buffer(sub, name, buffer, version, saved))
    for (sub, name), hooks in snap.hooks.items():
        attempt("hooks", lambda sub=sub, name=name, hooks=hooks: restore_hooks(sub, name, hooks))
    for sub, flag in snap.full_hooks.items():
        if flag is not None or hasattr(sub, "_is_full_backward_hook"):
            sub._is_full_backward_hook = flag
    for sub, flag in snap.training.items():
        sub.training = flag
    if failures:
        raise RuntimeError("the model could not be fully restored after the call: " + "; ".join(failures))


class ModelLock:
    """A fair lock for one model: threads get it in the order they asked for it
    (first come, first served), and the thread that holds it may take it again
    (reentrant, as for a :func:`preserved` block inside another).

    Waiting threads sleep on a condition variable; nobody polls. A long computation
    that holds the lock can ask :meth:`waiting` whether others wait and, between
    two of its steps, release it and ask again: it then queues behind them, so
    each of them has its turn first (this is what :class:`Turns` does).

    >>> lock = ModelLock()
    >>> with lock:
    ...     with lock:
    ...         lock.depth
    2
    >>> lock.depth, lock.waiting
    (0, 0)
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._queue: collections.deque[object] = collections.deque()  # one ticket per waiting thread
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        """Take the lock: at once when the calling thread holds it already, otherwise
        after every thread that asked before (sleeping meanwhile)."""
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._depth += 1
                return
            ticket = object()
            self._queue.append(ticket)
            try:
                while self._owner is not None or self._queue[0] is not ticket:
                    self._condition.wait()
            except BaseException:  # interrupted (KeyboardInterrupt): give the turn to the next one
                self._queue.remove(ticket)
                self._condition.notify_all()
                raise
            self._queue.popleft()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        """Give the lock back once; the next thread in line gets it when the holder has
        given back every time it took it."""
        with self._condition:
            if self._owner != threading.get_ident():
                raise RuntimeError("ModelLock.release() by a thread that does not hold the lock")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._condition.notify_all()

    def __enter__(self) -> "ModelLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock."""
        with self._condition:
            return len(self._queue)

    @property
    def depth(self) -> int:
        """How many times the calling thread holds the lock (0: not at all)."""
        with self._condition:
            return self._depth if self._owner == threading.get_ident() else 0


_locks: "weakref.WeakKeyDictionary[nn.Module, ModelLock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def model_lock(module: nn.Module) -> ModelLock:
    """The :class:`ModelLock` of ``module``: :func:`preserved` holds it, so one computation
    runs on a model at a time. Hold it around a check that must see the model free, then
    compute inside it (it is reentrant).

    >>> import torch
    >>> net = torch.nn.Conv2d(1, 1, 1)
    >>> model_lock(net) is model_lock(net)
    True
    """
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = _locks[module] = ModelLock()
        return lock


@contextlib.contextmanager
def preserved(module: nn.Module, device: torch.device | None = None) -> Iterator[nn.Module]:
    """Run a block with ``module`` in eval mode, parameter gradients off, on ``device``;
    then put everything back, even if the block raised.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).train()
    >>> with preserved(net) as m:
    ...     m.training
    False
    >>> net.training
    True
    """
    # One computation per model at a time: widgets compute in background threads, and a
    # second snapshot taken mid-call would record (and later restore) the first call's
    # temporary state.
    with model_lock(module):
        snap = _take(module)
        try:
            yield _enter(module, device)
        finally:
            _restore(module, snap)


def _enter(module: nn.Module, device: torch.device | None) -> nn.Module:
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    if device is not None:
        _move(module, device)
    return module


def _move(module: nn.Module, device: torch.device) -> None:
    """Move parameters and buffers to ``device`` without replacing the Parameter objects."""
    with torch.no_grad():
        for param in module.parameters():
            if param.device != device:
                param.data = param.data.to(device)
        for sub in module.modules():
            for name, buffer in list(sub._buffers.items()):
                if buffer is not None and buffer.device != device:
                    sub._buffers[name] = buffer.to(device)


def model_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def channels_last(module: nn.Module, enabled: bool = True, convs=None) -> Iterator[nn.Module]:
    """Run a block with the 2-d conv weights in channels_last (NHWC) memory layout, then
    put the very same weight tensors back. ``convs``: only these submodules (a network
    cut after a layer never runs the rest; VGG16's weights are 0.5 GB to copy).

    oneDNN's CPU convolutions (and CUDA tensor cores) run faster when inputs and weights
    share that layout; for fashion-cnn over Fashion-MNIST it is about 1.5x on two cores.
    Values never change, only strides; use inside :func:`preserved` (which holds the
    model's lock).

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    >>> storage, strides = net[0].weight.data_ptr(), net[0].weight.stride()
    >>> with channels_last(net):
    ...     net[0].weight.is_contiguous(memory_format=torch.channels_last)
    True
    >>> net[0].weight.data_ptr() == storage, net[0].weight.stride() == strides
    (True, True)
    """
    swapped = []
    try:
        if enabled:
            with torch.no_grad():
                for sub in (module.modules() if convs is None else convs):
                    # A weight shared by two convs is swapped once (twice, its "original" would be the swapped one).
                    if isinstance(sub, nn.Conv2d) and sub.weight.dim() == 4 and all(sub.weight is not w for w, _ in swapped):
                        original = sub.weight.data
                        sub.weight.data = original.contiguous(memory_format=torch.channels_last)
                        swapped.append((sub.weight, original))
        yield module
    finally:
        for weight, original in swapped:
            weight.data = original


class Turns:
    """:func:`preserved` for a long computation made of many steps (activation
    maximization, DeepDream), which hands the model over between two steps whenever
    another thread waits for it: a feature-map view on the same model then answers in
    the middle of a long run instead of after it.

    ``extra()`` makes a context entered inside each turn (hooks on the model); its value
    is ``turns.value``, new after each hand-over. Call :meth:`between_steps` where the
    model may change hands.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).train()
    >>> with Turns(net) as turns:
    ...     for step in range(3):
    ...         _ = turns.between_steps()
    ...     net.training
    False
    >>> net.training
    True
    """

    def __init__(self, module: nn.Module, device: torch.device | None = None, extra=contextlib.nullcontext) -> None:
        self.module, self.device, self.extra = module, device, extra
        self._lock = model_lock(module)
        self.value = None
        self._stack: contextlib.ExitStack | None = None

    def _open(self) -> None:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(preserved(self.module, self.device))
            self.value = stack.enter_context(self.extra())
        except BaseException:
            stack.close()
            raise
        self._stack = stack

    def __enter__(self) -> "Turns":
        self._open()
        return self

    def between_steps(self) -> bool:
        """Give the model to the threads waiting for it, if any; True if it changed hands.

        The model's state is restored, the lock released and asked for again: the
        threads that were waiting are ahead in line, so each has its turn first.
        Inside an outer :func:`preserved` block of the same thread nothing changes hands.
        """
        if not self._lock.waiting or self._lock.depth != 1:
            return False
        self._stack.close()
        self._stack = None
        self._open()
        return True

    def __exit__(self, *exc) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
