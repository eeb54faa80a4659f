"""Trainer callbacks that feed a :class:`~.monitor.TrainingMonitor`: PyTorch Lightning's
``Callback`` and Hugging Face's ``TrainerCallback``.

Neither package is a dependency of cnn-widgets: each is imported only when its
callback is asked for, and a clear ``ImportError`` says what to install
(``pip install "cnn-widgets[lightning]"`` or ``"cnn-widgets[hf-trainer]"``).

Both callbacks only call the monitor's ``step`` / ``record`` / ``validation``: like a
hand-written loop, the trainer's model, optimizer and schedule are left alone. At the
start of training each checks that the trainer trains the network the monitor shows
(otherwise the snapshots would show an untouched copy) and says so if not.
"""
from __future__ import annotations

import functools
import math

import torch


def lightning_callback(monitor, accuracy: str = "train_acc", val_loss: str = "val_loss", val_accuracy: str = "val_acc"):
    """A Lightning ``Callback`` that feeds ``monitor``: a step per training batch (its loss
    from ``training_step``'s return value), the logged ``accuracy`` with it, and
    ``val_loss`` / ``val_accuracy`` (names under which the module calls ``self.log``)
    after each validation run.

    >>> import cnn_widgets as cw
    >>> monitor = cw.TrainingMonitor(cw.load_model("fashion-cnn", weights=None), "bag", every=5)
    >>> callback = monitor.lightning_callback()
    >>> type(callback).__name__, type(callback).__mro__[1].__name__
    ('TrainingMonitorCallback', 'Callback')
    >>> monitor.close()
    """
    return _lightning_class()(monitor, accuracy, val_loss, val_accuracy)


def huggingface_callback(monitor, accuracy: str = "accuracy"):
    """A Hugging Face ``TrainerCallback`` that feeds ``monitor``: a step per optimizer step,
    the training loss whenever the Trainer logs it (every ``logging_steps``), and the
    evaluation's ``eval_loss`` and ``eval_<accuracy>`` (from ``compute_metrics``).

    >>> import cnn_widgets as cw
    >>> monitor = cw.TrainingMonitor(cw.load_model("fashion-cnn", weights=None), "bag", every=5)
    >>> callback = monitor.huggingface_callback()
    >>> type(callback).__name__, type(callback).__mro__[1].__name__
    ('TrainingMonitorCallback', 'TrainerCallback')
    >>> monitor.close()
    """
    return _huggingface_class()(monitor, accuracy)


def check_same_network(monitor, trained: torch.nn.Module, trainer: str) -> None:
    """Raise a ValueError unless ``trained`` is (or contains) the network ``monitor`` shows.

    >>> import torch, cnn_widgets as cw
    >>> model = cw.load_model("fashion-cnn", weights=None)
    >>> monitor = cw.TrainingMonitor(model, "bag", every=5)
    >>> check_same_network(monitor, torch.nn.Sequential(model.module), "a trainer")
    >>> check_same_network(monitor, torch.nn.Linear(2, 2), "a trainer")
    Traceback (most recent call last):
    ...
    ValueError: a trainer trains a Linear that does not contain the network the monitor shows (FashionCNN): its snapshots would never change...
    >>> monitor.close()
    """
    shown = monitor.model.module
    if trained is None or any(module is shown for module in trained.modules()):
        return
    raise ValueError(
        f"{trainer} trains a {type(trained).__name__} that does not contain the network the monitor shows "
        f"({type(shown).__name__}): its snapshots would never change. Make the monitor from the module you train, "
        f"e.g. cw.TrainingMonitor(cw.load_model(module, input_size=...), image)"
    )


def _number(value):
    """A float from a logged value (number or 0-d tensor), None when missing or not finite."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.detach().item()
    value = float(value)
    return value if math.isfinite(value) else None


@functools.cache
def _lightning_class():
    try:
        from lightning.pytorch import Callback
    except ImportError:
        try:
            from pytorch_lightning import Callback
        except ImportError:
            raise ImportError(
                'monitor.lightning_callback() needs PyTorch Lightning: pip install "cnn-widgets[lightning]" '
                "(or pip install lightning)"
            ) from None

    class TrainingMonitorCallback(Callback):
        """Feeds a cnn-widgets TrainingMonitor from a Lightning Trainer."""

        def __init__(self, monitor, accuracy: str, val_loss: str, val_accuracy: str) -> None:
            self.monitor = monitor
            self.names = {"accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}

        def on_fit_start(self, trainer, pl_module) -> None:
            check_same_network(self.monitor, pl_module, "the Lightning Trainer")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            self.monitor.step(loss=_number(loss), accuracy=_number(trainer.callback_metrics.get(self.names["accuracy"])))

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:  # Lightning's dry run before training: not a measurement
                return
            metrics = trainer.callback_metrics
            loss, accuracy = _number(metrics.get(self.names["val_loss"])), _number(metrics.get(self.names["val_accuracy"]))
            if loss is not None or accuracy is not None:
                self.monitor.validation(loss=loss, accuracy=accuracy)

    return TrainingMonitorCallback


@functools.cache
def _huggingface_class():
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise ImportError(
            'monitor.huggingface_callback() needs Hugging Face transformers: pip install "cnn-widgets[hf-trainer]" '
            "(transformers and accelerate, which its Trainer needs)"
        ) from None

    class TrainingMonitorCallback(TrainerCallback):
        """Feeds a cnn-widgets TrainingMonitor from a Hugging Face Trainer."""

        def __init__(self, monitor, accuracy: str) -> None:
            self.monitor = monitor
            self.accuracy = accuracy

        def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
            check_same_network(self.monitor, model, "the Hugging Face Trainer")

        def on_step_end(self, args, state, control, **kwargs) -> None:
            self.monitor.step()

        def on_log(self, args, state, control, logs=None, **kwargs) -> None:
            logs = logs or {}
            if "loss" in logs:  # the mean training loss since the last log
                self.monitor.record(loss=_number(logs["loss"]), accuracy=_number(logs.get(self.accuracy)))
            if "eval_loss" in logs or f"eval_{self.accuracy}" in logs:
                self.monitor.validation(loss=_number(logs.get("eval_loss")), accuracy=_number(logs.get(f"eval_{self.accuracy}")))

    return TrainingMonitorCallback
