"""The atlas: top dataset examples of every unit, written to a store, on one process
or several (gloo), and resumed after a rank died."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnn_widgets as cw
from cnn_widgets.atlas import atlas, open_atlas
from cnn_widgets.engine.receptive_field import ReceptiveField, receptive_fields
from cnn_widgets.models.datasets import load_fashion_mnist

COUNT = 160
OPTIONS = dict(k=4, batch_size=16, workers=1, checkpoint_every=2, progress=False)  # as in atlas_rank.py
REPOSITORY = Path(__file__).resolve().parents[2]
# One torch thread here and in every rank: the same kernels in every process, and no
# OpenMP threads spinning against the other jobs on the two cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Fashion-MNIST test images as PNG files in one folder per class."""
    root = tmp_path_factory.mktemp("images")
    images, labels = load_fashion_mnist("test")
    classes = cw.load_model("fashion-cnn").classes
    for i in range(COUNT):
        directory = root / classes[int(labels[i])].replace("/", "-")
        directory.mkdir(exist_ok=True)
        Image.fromarray(images[i].numpy()).save(directory / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    """The store of one process, in this process."""
    out = tmp_path_factory.mktemp("one") / "atlas"
    atlas(cw.load_model("fashion-cnn", device="cpu"), folder, out, **OPTIONS)
    return out


def store_files(store: Path) -> dict[str, bytes]:
    return {path.relative_to(store).as_posix(): path.read_bytes() for path in sorted(store.rglob("*")) if path.is_file()}


def run_ranks(folder: Path, out: Path, world: int, die_after: int | None = None, restarts: int = 0) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=world`` of atlas_rank.py (gloo); with ``die_after``,
    rank 1 dies after that many images and torchrun stops the other rank (and, with
    ``restarts``, starts both again)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}", f"--max-restarts={restarts}",
               str(Path(__file__).with_name("atlas_rank.py")), str(folder), str(out)]
    return subprocess.run(command + ([str(die_after)] if die_after is not None else []), capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, timeout=600)


def test_the_store_holds_each_units_strongest_images(folder, reference):
    store = open_atlas(reference)
    model = cw.load_model("fashion-cnn", device="cpu")
    assert store.layer_names == model.layer_names
    assert store.manifest["data"]["images"] == COUNT and store.manifest["k"] == 4
    examples = store.examples("block2_conv1", 5)
    values = [example["value"] for example in examples]
    assert values == sorted(values, reverse=True)
    # Independently: every image through the network up to block2_conv1 (features.5, before its ReLU).
    files = sorted(p for p in folder.rglob("*.png"))
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(f), dtype=np.float32) / 255) for f in files]).unsqueeze(1)
    with torch.no_grad():
        maps = model.module.features[:6](model.normalize(pixels))[:, 5]
    strongest = maps.flatten(1).max(1).values
    best = strongest.topk(4)
    assert [e["image"] for e in examples] == best.indices.tolist()
    assert values == pytest.approx(best.values.tolist(), abs=1e-4)
    first = examples[0]
    assert first["id"] == files[first["image"]].relative_to(folder).as_posix()
    assert first["label"] == files[first["image"]].parent.name
    assert maps[first["image"], first["row"], first["column"]] == pytest.approx(first["value"], abs=1e-4)


def test_each_example_holds_the_models_prediction_for_its_image(folder, reference):
    store = open_atlas(reference)
    model = cw.load_model("fashion-cnn", device="cpu")
    assert store.manifest["predicted"].startswith("the model's most probable class")
    files = sorted(p for p in folder.rglob("*.png"))
    for layer, unit in (("block1_conv1", 3), ("block3_conv2", 100)):
        examples = store.examples(layer, unit)
        pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(files[e["image"]]), dtype=np.float32) / 255) for e in examples]).unsqueeze(1)
        with torch.no_grad():
            probabilities = model.module(model.normalize(pixels)).softmax(dim=1)
        for example, image in zip(examples, probabilities):
            assert isinstance(example["predicted"], tuple), "(class, probability), as for a scanned dataset"
            name, probability = example["predicted"]
            assert name == model.classes[int(image.argmax())]
            assert probability == pytest.approx(float(image.max()), abs=1e-5)


def test_crops_show_the_receptive_field_of_the_strongest_response(folder, reference):
    store = open_atlas(reference)
    layer = next(entry for entry in store.manifest["layers"] if entry["name"] == "block2_conv1")
    assert layer["receptive_field"] == {"size": [10, 10], "stride": [2, 2], "start": [-4, -4]}
    strip = np.asarray(store.crops("block2_conv1", 5).convert("L"), dtype=np.float32)
    assert strip.shape == (10, 40), "four 10x10 crops side by side"
    files = sorted(p for p in folder.rglob("*.png"))
    for slot, example in enumerate(store.examples("block2_conv1", 5)):
        top, left, height, width = example["crop"]
        row, column = example["row"], example["column"]
        assert (height, width) == (10, 10) and 0 <= top <= 18 and 0 <= left <= 18
        # The crop covers the field of the response (moved inside the picture at the border).
        assert top <= max(0, -4 + 2 * row) and min(28, -4 + 2 * row + 10) <= top + height
        original = np.asarray(Image.open(files[example["image"]]), dtype=np.float32)[top : top + height, left : left + width]
        assert np.abs(strip[:, slot * 10 : slot * 10 + 10] - original).mean() < 6, "the stored crop is that part of the image (WebP at quality 90)"


def test_receptive_fields_follow_the_module_graph():
    class Branches(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(1, 4, 3, stride=2, padding=1)
            self.wide = torch.nn.Conv2d(4, 4, 5, padding=2)
            self.skip = torch.nn.Conv2d(4, 4, 1)
            self.head = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            x = torch.nn.functional.max_pool2d(self.wide(x) + self.skip(x), 2)
            return self.head(x)

    model = cw.load_model(Branches(), input_size=(1, 32, 32))
    fields = receptive_fields(model)
    assert fields["stem"] == ReceptiveField((3, 3), (2, 2), (-1, -1))
    assert fields["skip"] == ReceptiveField((3, 3), (2, 2), (-1, -1))
    assert fields["wide"] == ReceptiveField((11, 11), (2, 2), (-5, -5)), "3 + 4 x 2"
    # head: its 3x3 window over the 2x2 max pool of the wider branch: (3 - 1) x 4 + (2 - 1) x 2 + 11.
    assert fields["head"] == ReceptiveField((21, 21), (4, 4), (-9, -9))


def test_a_run_killed_midway_resumes_to_the_same_store_also_when_torchrun_restarts_the_dead_rank(tmp_path, folder, reference):
    out = tmp_path / "killed"
    died = run_ranks(folder, out, world=2, die_after=48)
    assert died.returncode != 0 and "exitcode  : 3" in died.stderr, died.stderr[-3000:]
    assert not (out / "atlas.json").exists(), "the run did not finish"
    saved = torch.load(out / "checkpoints" / "rank1-of-2.pt", weights_only=True)
    share = COUNT // 16 // 2 * 16  # rank 1 scans the second half of the batches
    assert share <= saved["next_batch"] * 16 < share + 48, "rank 1 checkpointed part of its share before it died"
    # The rerun resumes from the checkpoints; rank 1 dies once more before it has finished its share, and
    # torchrun restarts both ranks (a new process group), which resume again and finish.
    done = run_ranks(folder, out, world=2, die_after=48, restarts=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failed (exitcode: 3)" in done.stderr, "rank 1 died once in the rerun"
    assert store_files(out) == store_files(reference)


def test_webdataset_shards_give_the_same_examples_as_the_folder(tmp_path, folder, reference):
    files = sorted(p for p in folder.rglob("*.png"))
    classes = sorted({f.parent.name for f in files})
    for shard, part in enumerate((files[:100], files[100:])):  # two shards
        with tarfile.open(tmp_path / f"shard-{shard:02d}.tar", "w") as tar:
            for file in part:
                key = f"{file.parent.name}_{file.stem}"
                for name, data in ((f"{key}.png", file.read_bytes()), (f"{key}.cls", str(classes.index(file.parent.name)).encode())):
                    member = tarfile.TarInfo(name)
                    member.size = len(data)
                    tar.addfile(member, io.BytesIO(data))
    (tmp_path / "notes.txt").write_text("not a shard")
    out = tmp_path / "atlas"
    atlas(cw.load_model("fashion-cnn", device="cpu"), str(tmp_path / "shard-*.tar"), out, layers=["block3_conv2"], **OPTIONS)
    from_tar, from_folder = open_atlas(out), open_atlas(reference)
    assert from_tar.manifest["data"]["kind"] == "webdataset"
    for unit in (0, 17, 127):
        tar_examples, folder_examples = from_tar.examples("block3_conv2", unit), from_folder.examples("block3_conv2", unit)
        assert [e["value"] for e in tar_examples] == [e["value"] for e in folder_examples]
        for t, f in zip(tar_examples, folder_examples):
            assert t["id"] == f"shard-{min(t['image'] // 100, 1):02d}.tar/{f['id'].replace('/', '_')[:-4]}"
            assert t["label"] == str(classes.index(f["label"]))


def test_torchrun_runs_the_command_line_on_two_processes_and_writes_the_same_store_as_one(tmp_path, folder, reference):
    """Two processes (gloo) through the command line: the same bytes as the one-process store.
    (The kill/resume test, whose rerun torchrun also restarts, ends in a two-process store equal to it too.)"""
    out = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cnn_widgets.cli", "atlas", "fashion-cnn",
               "--data", str(folder), "--out", str(out), "--k", "4", "--batch-size", "16", "--workers", "1", "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "img/s" in done.stderr, "a progress bar per rank with the rate"
    assert "wrote" in done.stdout and "448 units in 6 layers" in done.stdout
    assert store_files(out) == store_files(reference)
    assert not (out / "checkpoints").exists()


def test_bad_arguments_are_clear_errors_and_the_model_is_unchanged(tmp_path, folder):
    model = cw.load_model("fashion-cnn", device="cpu")
    model.module.train()
    with pytest.raises(ValueError, match="k must be a positive int"):
        atlas(model, folder, tmp_path / "a", k=0)
    with pytest.raises(ValueError, match="Valid choices: block1_conv1"):
        atlas(model, folder, tmp_path / "a", layers=["block9_conv1"])
    with pytest.raises(FileNotFoundError, match="data"):
        atlas(model, tmp_path / "missing.tar", tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="no finished atlas"):
        open_atlas(tmp_path / "a")
    atlas(model, folder, tmp_path / "b", layers="block1_conv1", **OPTIONS)
    assert model.module.training and not any(module._forward_hooks for module in model.module.modules())
    with pytest.raises(ValueError, match="valid choices: block1_conv1"):
        open_atlas(tmp_path / "b").examples("block2_conv1", 0)
    manifest = json.loads((tmp_path / "b" / "atlas.json").read_text())
    assert [layer["name"] for layer in manifest["layers"]] == ["block1_conv1"]


def test_the_command_line_says_what_is_wrong_with_the_data(tmp_path, capsys):
    from cnn_widgets.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["atlas", "fashion-cnn", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "atlas")]) == 2
    assert "no images" in capsys.readouterr().err
    assert not (tmp_path / "atlas").exists()


def test_one_process_stopped_resumes_and_a_checkpoint_of_another_run_is_not_used(tmp_path, folder, reference):
    model = cw.load_model("fashion-cnn", device="cpu")
    out = tmp_path / "stopped"

    def stop_after_4_batches(done, total):
        if done >= 64:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atlas(model, folder, out, **{**OPTIONS, "progress": stop_after_4_batches})
    assert torch.load(out / "checkpoints" / "rank0-of-1.pt", weights_only=True)["next_batch"] == 2, "saved every 2 batches"
    reports = []
    atlas(model, folder, out, **{**OPTIONS, "progress": lambda done, total: reports.append((done, total))})
    assert reports[0] == (48, COUNT), "resumed after the 2 saved batches (32 images)"
    assert store_files(out) == store_files(reference)

    with pytest.raises(KeyboardInterrupt):
        atlas(model, folder, out, **{**OPTIONS, "k": 3, "progress": stop_after_4_batches})
    with pytest.warns(UserWarning, match="different run"):
        atlas(model, folder, out, **OPTIONS)  # k=4 again: the k=3 checkpoint must not be resumed
    assert store_files(out) == store_files(reference)


def test_a_new_run_replaces_a_finished_store(tmp_path, folder):
    model = cw.load_model("fashion-cnn", device="cpu")
    atlas(model, folder, tmp_path / "atlas", layers=["block1_conv1", "block2_conv1"], **OPTIONS)
    atlas(model, folder, tmp_path / "atlas", layers=["block1_conv1"], **OPTIONS)
    assert sorted(p.name for p in (tmp_path / "atlas" / "layers").iterdir()) == ["features.0.json"]
    assert sorted(p.name for p in (tmp_path / "atlas" / "crops").iterdir()) == ["features.0"]


def test_replacing_a_store_removes_a_link_in_it_and_leaves_what_the_link_points_to(tmp_path, folder):
    model = cw.load_model("fashion-cnn", device="cpu")
    out = tmp_path / "atlas"
    atlas(model, folder, out, layers=["block1_conv1"], **OPTIONS)
    elsewhere = tmp_path / "someone-elses-folder"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    shutil.rmtree(out / "layers")
    (out / "layers").symlink_to(elsewhere, target_is_directory=True)
    atlas(model, folder, out, layers=["block1_conv1"], **OPTIONS)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]  # nothing written through the link
    assert not (out / "layers").is_symlink()
    assert sorted(p.name for p in (out / "layers").iterdir()) == ["features.0.json"]


def test_the_default_decoding_workers_count_the_cpus_this_process_may_use_shared_by_the_ranks(monkeypatch):
    # A batch job given 4 cores of a 128-core GPU node: os.cpu_count() says 128, the affinity mask 4.
    from cnn_widgets.atlas import decoding_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert [decoding_workers(world) for world in (1, 2, 4, 8)] == [4, 2, 1, 1]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert [decoding_workers(world) for world in (1, 8, 16)] == [8, 8, 4]
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows: no affinity mask
    assert decoding_workers(1) == 8 and decoding_workers(32) == 4


def test_after_the_scan_each_example_image_is_read_once_for_all_layers_and_the_store_is_the_same_in_several_passes(tmp_path, folder, reference, monkeypatch):
    # Images shared by units and layers are read (and predicted) once; crops too many to hold together
    # are written in several passes (here one per layer), with the same bytes.
    import cnn_widgets.atlas as module
    from cnn_widgets.engine.image_files import ImageFiles

    model = cw.load_model("fashion-cnn", device="cpu")
    reads = []
    read = ImageFiles.__getitem__
    monkeypatch.setattr(ImageFiles, "__getitem__", lambda self, index: reads.append(index) or read(self, index))
    atlas(model, folder, tmp_path / "once", **{**OPTIONS, "workers": 0})  # no worker processes: the reads are counted here
    assert store_files(tmp_path / "once") == store_files(reference)
    layers = [json.loads(path.read_text()) for path in (tmp_path / "once" / "layers").rglob("*.json")]
    examples = {example["image"] for layer in layers for unit in layer["units"] for example in unit}
    assert len(layers) == 6 and len(examples) < sum(len(unit) for layer in layers for unit in layer["units"]) / 10
    after_scan = reads[COUNT:]
    assert sorted(reads[:COUNT]) == list(range(COUNT)), "the scan reads every image once"
    assert sorted(after_scan) == sorted(examples), "then each example image once, whatever the number of its units and layers"

    monkeypatch.setattr(module, "_TILE_BUDGET", 1)
    atlas(model, folder, tmp_path / "passes", **OPTIONS)
    assert store_files(tmp_path / "passes") == store_files(reference)
