"""TrainingMonitor fed by a trainer: a tiny PyTorch Lightning and a tiny Hugging Face
Trainer run, each with the monitor's callback, record the snapshots and curves a
hand-written loop would (skipped, saying why, where the optional package is absent)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnn_widgets as cw

CLASSES = [f"class {i}" for i in range(10)]


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def data(count: int = 64):
    generator = torch.Generator().manual_seed(1)
    return torch.rand(count, 1, 28, 28, generator=generator), torch.randint(0, 10, (count,), generator=generator)


def test_lightning_trainer_with_the_callback_produces_snapshots_and_curves(tmp_path, one_thread):
    lightning = pytest.importorskip("lightning", reason="PyTorch Lightning is an optional extra (pip install 'cnn-widgets[lightning]')")
    from torch.utils.data import DataLoader, TensorDataset

    class Classifier(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn()

        def forward(self, images):
            return self.net(images)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            logits = self(images)
            self.log("train_acc", (logits.argmax(1) == labels).float().mean())
            return nn.functional.cross_entropy(logits, labels)

        def validation_step(self, batch, batch_idx):
            images, labels = batch
            logits = self(images)
            self.log("val_loss", nn.functional.cross_entropy(logits, labels))
            self.log("val_acc", (logits.argmax(1) == labels).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

    module = Classifier()
    monitor = cw.TrainingMonitor(cw.load_model(module, input_size=(1, 28, 28), classes=CLASSES), "bag", every=4)
    images, labels = data()
    loader = DataLoader(TensorDataset(images, labels), batch_size=16)  # 4 batches an epoch
    trainer = lightning.Trainer(
        max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        default_root_dir=tmp_path, callbacks=[monitor.lightning_callback()],
    )
    trainer.fit(module, loader, loader)
    assert monitor.wait(timeout=120)
    assert monitor.snapshot_steps == [0, 4, 8, 12]
    assert not torch.equal(monitor.snapshots[0].filters, monitor.snapshots[-1].filters)  # it learned, and we saw it
    train = monitor.curves["train"]
    assert train["step"] == list(range(1, 13))
    assert all(loss > 0 for loss in train["loss"]) and all(0 <= a <= 1 for a in train["accuracy"])
    assert monitor.curves["validation"]["step"] == [4, 8, 12]  # after each epoch's validation
    assert all(0 <= a <= 1 for a in monitor.curves["validation"]["accuracy"])
    monitor.close()


def test_lightning_callback_refuses_a_trainer_that_trains_another_network(tmp_path, one_thread):
    lightning = pytest.importorskip("lightning", reason="PyTorch Lightning is an optional extra (pip install 'cnn-widgets[lightning]')")

    class Tiny(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn()

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    monitor = cw.TrainingMonitor(cw.load_model(small_cnn(), input_size=(1, 28, 28), classes=CLASSES), "bag", every=4)
    trainer = lightning.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                                callbacks=[monitor.lightning_callback()])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*data(16)), batch_size=16)
    with pytest.raises(ValueError, match="does not contain the network the monitor shows"):
        trainer.fit(Tiny(), loader)
    monitor.close()


def test_huggingface_trainer_with_the_callback_produces_snapshots_and_curves(tmp_path, one_thread):
    transformers = pytest.importorskip("transformers", reason="Hugging Face transformers is an optional extra (pip install 'cnn-widgets[hf-trainer]')")
    pytest.importorskip("accelerate", reason="the Hugging Face Trainer needs accelerate (pip install 'cnn-widgets[hf-trainer]')")

    class Classifier(nn.Module):
        """What the Trainer expects of a model: keyword inputs, the loss in the output."""

        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn()

        def forward(self, pixel_values, labels=None):
            logits = self.net(pixel_values)
            loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
            return transformers.modeling_outputs.ImageClassifierOutput(loss=loss, logits=logits)

    model = Classifier()
    monitor = cw.TrainingMonitor(cw.load_model(model, input_size=(1, 28, 28), classes=CLASSES), "bag", every=4)
    images, labels = data()
    rows = [{"pixel_values": image, "labels": int(label)} for image, label in zip(images, labels)]

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=12, per_device_train_batch_size=16, per_device_eval_batch_size=32,
        learning_rate=0.01, logging_steps=2, eval_strategy="steps", eval_steps=6, save_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(model=model, args=arguments, train_dataset=rows, eval_dataset=rows[:32],
                                   compute_metrics=accuracy, callbacks=[monitor.huggingface_callback()])
    trainer.train()
    assert monitor.wait(timeout=120)
    assert monitor.snapshot_steps == [0, 4, 8, 12]
    assert not torch.equal(monitor.snapshots[0].filters, monitor.snapshots[-1].filters)
    assert monitor.curves["train"]["step"] == [2, 4, 6, 8, 10, 12]  # every logging_steps
    assert all(loss > 0 for loss in monitor.curves["train"]["loss"])
    validation = monitor.curves["validation"]
    assert validation["step"] == [6, 12] and all(0 <= a <= 1 for a in validation["accuracy"])
    monitor.close()
