"""An atlas of every unit: the top-k dataset examples of every conv channel of a
model over a dataset on disk, with their receptive-field crops, written to an
open store (JSON manifests plus WebP crops; the format is in docs/atlas.md).

It scales out on ``torch.distributed`` as launched by ``torchrun``: each rank
scans a contiguous share of the dataset's batches with the same scanner as
:func:`cnn_widgets.engine.dataset_examples`, keeps a running top-k per unit on
its device, checkpoints it now and then, and the ranks merge exactly at the end
(order by response, ties by global image index), so one process, two, or a run
killed and resumed all write the same store.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from .engine.examples import RunningTopK, scan
from .engine.image_files import ImageFiles
from .engine.receptive_field import receptive_fields
from .models import as_model, preserved
from .models.device import resolve_device
from .models.layers import layer_list
from .models.outputs import AmbiguousOutputError
from .render.encode import encode

FORMAT = "cnn-widgets-atlas"
VERSION = 1
MANIFEST = "atlas.json"
CHECKPOINTS = "checkpoints"
_NO_IMAGE = torch.iinfo(torch.long).max  # pads a rank's top-k that saw fewer than k images


def atlas(
    model,
    data: "str | os.PathLike",
    out: "str | os.PathLike",
    *,
    layers=None,
    k: int = 9,
    batch_size: int = 64,
    workers: int | None = None,
    crop_size: int = 128,
    checkpoint_every: int = 100,
    device: "str | torch.device | None" = None,
    progress: "bool | Callable[[int, int], None]" = True,
    visualizations: bool = False,
    visualization_steps: int = 256,
) -> Path:
    """Write the atlas of ``model`` over the images at ``data`` to the folder ``out``.

    For every unit (channel) of every conv layer (or of ``layers``): the ``k``
    images with the strongest response anywhere in the input of the layer's activation
    (after its BatchNorm, where it has one), where it is, its value, the crop of
    the input under the unit's receptive field, and the model's prediction for the
    image (class and probability; when the model has class scores). ``data``: an image folder (class
    = folder name) or WebDataset tar shards (see
    :class:`~cnn_widgets.engine.image_files.ImageFiles`), decoded by ``workers``
    DataLoader processes (default: :func:`decoding_workers`, the CPUs per process, up to 8).

    Run under ``torchrun`` (or inside an initialized process group), each process
    scans its share and the results are merged; every ``checkpoint_every`` batches
    each rank saves its state under ``out/checkpoints``, and a rerun with the same
    arguments resumes from there. ``progress``: True draws a bar per rank on
    stderr (images/s and the time left); a callable gets ``(done, total)`` images of
    this rank after each batch. ``visualizations``: also store each unit's feature
    visualization, made by :func:`cnn_widgets.engine.maximize` (``visualization_steps``
    steps, the "high" quality preset, seed 0; a layer's units in batches sized to the
    device's memory). Returns the path of the manifest, ``out/atlas.json``.

    >>> import tempfile, numpy as np, cnn_widgets as cw
    >>> from PIL import Image
    >>> from cnn_widgets.models.datasets import load_fashion_mnist
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i, picture in enumerate(load_fashion_mnist("test")[0][:20].numpy()):
    ...     Image.fromarray(picture).save(folder / f"{i:02d}.png")
    >>> manifest = atlas(cw.load_model("fashion-cnn"), folder, folder / "atlas", layers=["block1_conv1"], k=3, progress=False)
    >>> store = open_atlas(folder / "atlas")
    >>> len(store.examples("block1_conv1", 0)), store.crops("block1_conv1", 0).size
    (3, (9, 3))
    >>> name, probability = store.examples("block1_conv1", 0)[0]["predicted"]
    >>> name in cw.load_model("fashion-cnn").classes and 0 < probability <= 1
    True
    """
    model = as_model(model)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    for name, value in (("batch_size", batch_size), ("crop_size", crop_size), ("checkpoint_every", checkpoint_every),
                        ("visualization_steps", visualization_steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    chosen = list(model.layers) if layers is None else [model.layer(layer) for layer in layer_list(layers)]
    channels, height, width = model.input_size
    dataset = ImageFiles(data, channels, (height, width))
    out = Path(out)
    count = len(dataset)
    k = min(k, count)

    owns_group = _join_process_group(model, device)
    try:
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        compute = _rank_device(model, device)
        if workers is None:
            workers = decoding_workers(world)
        batches = math.ceil(count / batch_size)
        mine = range(rank * batches // world, (rank + 1) * batches // world)
        run = _run_key(model, dataset, chosen, k, batch_size, world)
        checkpoint = out / CHECKPOINTS / f"rank{rank}-of-{world}.pt"
        if rank == 0 and (out / MANIFEST).exists():  # a finished store is replaced, not mixed with the new one
            for part in ("layers", "crops", "visualizations"):
                _remove(out / part)
            (out / MANIFEST).unlink()  # the manifest is written last: it marks a finished store
        top = RunningTopK({info.name: info.out_channels for info in chosen}, k, compute)
        next_batch = _resume(checkpoint, run, top, mine)
        first_image, last_image = mine.start * batch_size, min(mine.stop * batch_size, count)

        def checkpointed(loader):
            done = next_batch
            for batch_indices, pixels in loader:
                yield int(batch_indices[0]), pixels
                done += 1  # resumed here once the scanner has folded the batch in
                if (done - mine.start) % checkpoint_every == 0 or done == mine.stop:
                    _save(checkpoint, {"run": run, "next_batch": done, "top": top.state()})

        report, close = _progress(progress, rank, world, last_image - first_image, min(next_batch * batch_size, count) - first_image)
        try:
            if next_batch < mine.stop:
                loader = torch.utils.data.DataLoader(
                    dataset,
                    batch_sampler=[list(range(b * batch_size, min((b + 1) * batch_size, count))) for b in range(next_batch, mine.stop)],
                    num_workers=workers,
                    pin_memory=compute.type == "cuda",
                )
                with preserved(model.module, compute):
                    widths = scan(model, checkpointed(loader), chosen, top, compute, report)
            else:
                widths = {}
        finally:
            close()
        widths = {info.name: info.output_shape[2] for info in chosen} | widths
        if world > 1:
            _merge(top, chosen, k)
        fields = receptive_fields(model, chosen)
        examples = {info.name: _unit_examples(top, info.name, widths[info.name], dataset, fields[info.name], (height, width)) for info in chosen}
        predicts = _predicts(model)
        # Each rank writes the layers dealt to it (crops, predictions, examples), then rank 0 the manifest.
        dealt = [info for position, info in enumerate(chosen) if position % world == rank]
        _write_layers(out, model, dealt, examples, dataset, crop_size, workers, compute if predicts else None, rank, world)
        if visualizations:
            for info in dealt:
                _write_visualizations(out, model, info, visualization_steps, compute)
        if world > 1:
            dist.barrier()
        if rank == 0:
            _write_json(out / MANIFEST, _manifest(model, dataset, chosen, fields, k, crop_size, visualization_steps if visualizations else None, predicts))
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
        if world > 1:
            dist.barrier()
        return out / MANIFEST
    finally:
        if owns_group:
            dist.destroy_process_group()


# -- processes and devices ---------------------------------------------------------------


def decoding_workers(world: int = 1) -> int:
    """The atlas's default number of DataLoader decoding processes per rank: the CPUs this
    process may run on, shared among the ``world`` ranks of the machine, at least 1 and at
    most 8. The CPUs are those of the process's affinity mask where the platform has one
    (a batch job or container given 16 cores of a 128-core GPU node gets 16), else
    ``os.cpu_count()``.

    >>> 1 <= decoding_workers() <= 8
    True
    """
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 2)
    return max(1, min(8, cpus // max(1, world)))


def _join_process_group(model, device) -> bool:
    """Under torchrun (WORLD_SIZE > 1) with no process group yet: start one, NCCL on
    GPUs and gloo on CPUs, rendezvous from torchrun's environment. True if we did.

    The group's keys live under the attempt's name in torchrun's store: after torchrun
    restarts the ranks (``--max-restarts``) the store is the same, and without the prefix
    the new ranks read the dead ranks' addresses (gloo's connectFullMesh then hangs or is
    refused)."""
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = _wanted_device(model, device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    store, rank, world = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group("nccl" if cuda else "gloo", store=dist.PrefixStore(f"cnn-widgets-atlas/attempt-{attempt}", store), rank=rank, world_size=world)
    return True


def _wanted_device(model, device) -> torch.device:
    return model.device if device is None else resolve_device(device)


def _rank_device(model, device) -> torch.device:
    wanted = _wanted_device(model, device)
    if wanted.type == "cuda" and dist.is_initialized() and dist.get_world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    return wanted


def _merge(top: RunningTopK, chosen, k: int) -> None:
    """Every rank gets the exact top-k over all ranks (same order everywhere)."""
    world = dist.get_world_size()
    for info in chosen:
        parts = []
        for tensor, fill in ((top.values[info.name], float("-inf")), (top.indices[info.name], _NO_IMAGE), (top.places[info.name], 0)):
            padded = torch.full((tensor.shape[0], k), fill, dtype=tensor.dtype, device=tensor.device)
            padded[:, : tensor.shape[1]] = tensor
            gathered = [torch.empty_like(padded) for _ in range(world)]
            dist.all_gather(gathered, padded)
            parts.append(torch.cat(gathered, dim=1))
        top.values[info.name] = top.values[info.name][:, :0]
        top.indices[info.name] = top.indices[info.name][:, :0]
        top.places[info.name] = top.places[info.name][:, :0]
        top.merge(*parts, name=info.name)


# -- checkpoints -------------------------------------------------------------------------


def weights_fingerprint(model) -> str:
    """A hash of the model's parameters and buffers (names and values): two models with
    the same fingerprint compute the same thing.

    >>> import cnn_widgets as cw
    >>> len(weights_fingerprint(cw.load_model("fashion-cnn")))
    32
    """
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in as_model(model).module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _run_key(model, dataset: ImageFiles, chosen, k: int, batch_size: int, world: int) -> str:
    """What a checkpoint must match to be resumed: model weights, data, layers, k, batches, ranks."""
    layers = ",".join(info.path for info in chosen)
    return f"weights={weights_fingerprint(model)} data={dataset.fingerprint()} layers={layers} k={k} batch_size={batch_size} world={world}"


def _resume(checkpoint: Path, run: str, top: RunningTopK, mine: range) -> int:
    if not checkpoint.exists():
        return mine.start
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if state.get("run") != run:
        warnings.warn(f"{checkpoint} is from a different run (other model, data or options); starting this rank afresh", stacklevel=3)
        return mine.start
    top.load_state(state["top"])
    return int(state["next_batch"])


def _remove(path: Path) -> None:
    """Remove a part of an old store: a link is removed itself, never followed (what it
    points to is not the store's), a folder with all it holds; a failure raises rather than
    leave old and new files mixed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a rank killed mid-write leaves the previous checkpoint intact


def _progress(progress, rank: int, world: int, total: int, initial: int):
    if callable(progress):
        done = initial

        def report(count: int) -> None:
            nonlocal done
            done += count
            progress(done, total)

        return report, lambda: None
    if not progress:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, desc=f"atlas rank {rank}/{world}", unit="img", position=rank, file=sys.stderr, dynamic_ncols=True)
    return bar.update, bar.close


# -- the store ---------------------------------------------------------------------------


def _unit_examples(top: RunningTopK, name: str, width: int, dataset: ImageFiles, field, size) -> list[list[dict]]:
    values, indices, places = top.values[name].cpu(), top.indices[name].cpu(), top.places[name].cpu()
    units = []
    for unit in range(values.shape[0]):
        rows = []
        for value, index, place in zip(values[unit].tolist(), indices[unit].tolist(), places[unit].tolist()):
            row, column = divmod(place, width)
            record = dataset.records[index]
            rows.append({
                "image": index, "id": record.id, "label": record.label, "value": value if math.isfinite(value) else None,
                "row": row, "column": column, "crop": list(field.crop_box(row, column, *size)),
            })
        units.append(rows)
    return units


def _predicts(model) -> bool:
    """Whether the atlas stores the model's prediction for each example: when the model has
    class scores (a feature extractor has none; an ambiguous output is said, and skipped)."""
    try:
        return bool(model.classes)
    except AmbiguousOutputError as error:
        warnings.warn(f"the atlas stores no predictions: {error}", stacklevel=3)
        return False


_PREDICTION_BATCH = 64  # images per forward pass of the predictions
_TILE_BUDGET = 1 << 30  # bytes of crops a rank holds at once before it writes their strips


def _write_layers(out: Path, model, dealt: list, examples: dict[str, list[list[dict]]], dataset: ImageFiles, crop_size: int,
                  workers: int, device: torch.device | None, rank: int, world: int) -> None:
    """The store's part of the layers ``dealt`` to this rank: per unit one WebP, its k crops
    side by side, best first, each at the field's size (scaled down to at most ``crop_size``
    pixels on its longer side); with a ``device``, each example's ``predicted`` [class,
    probability] (the model on the whole image); then each layer's examples file.

    Each distinct image is read once (by ``workers`` DataLoader processes, which also cut its
    crops) for all the dealt layers whose crops fit in memory together (``_TILE_BUDGET``; more
    layers take more passes), and its prediction is made once for the whole atlas: the
    distinct images of every layer, in index order, in batches of ``_PREDICTION_BATCH`` dealt
    round-robin to the ranks and shared between them. The batches are the same whichever
    ranks there are, so the store has the same bits from every run. The strips are encoded
    by a pool of threads (Pillow lets go of the GIL while it encodes)."""
    every_image = sorted({example["image"] for units in examples.values() for unit in units for example in unit})
    batches = [every_image[i : i + _PREDICTION_BATCH] for i in range(0, len(every_image), _PREDICTION_BATCH)] if device is not None else []
    predicting = batches[rank::world]
    groups, group, held = [], [], 0
    for info in dealt:
        size = sum(_tile_bytes(example["crop"], crop_size, dataset.channels) for unit in examples[info.name] for example in unit)
        if group and held + size > _TILE_BUDGET:
            groups.append(group)
            group, held = [], 0
        group.append(info)
        held += size
    groups.append(group)  # the first pass also reads the images this rank predicts, even with no layers dealt
    classes = torch.full((len(every_image),), -1, dtype=torch.long)
    probabilities = torch.zeros(len(every_image), dtype=torch.float32)
    place = {image: position for position, image in enumerate(every_image)}
    with contextlib.ExitStack() as stack:
        if device is not None:
            stack.enter_context(preserved(model.module, device))
            stack.enter_context(torch.no_grad())
        encoders = stack.enter_context(ThreadPoolExecutor(max(1, workers)))
        for number, group in enumerate(groups):
            cuts: dict[int, list] = {}  # image -> [(layer, unit, slot, crop box)]
            for info in group:
                for unit, unit_examples in enumerate(examples[info.name]):
                    for slot, example in enumerate(unit_examples):
                        cuts.setdefault(example["image"], []).append((info.name, unit, slot, tuple(example["crop"])))
            jobs = [(images, True) for images in predicting] if number == 0 else []
            seen = {image for images, _ in jobs for image in images}
            left = sorted(set(cuts) - seen)
            jobs += [(left[i : i + _PREDICTION_BATCH], False) for i in range(0, len(left), _PREDICTION_BATCH)]
            tiles: dict[tuple, np.ndarray] = {}
            if jobs:
                cutter = _Cutter(dataset, jobs, cuts, crop_size)
                loader = torch.utils.data.DataLoader(cutter, batch_size=None, collate_fn=_as_is, num_workers=min(workers, len(jobs)),
                                                     pin_memory=device is not None and device.type == "cuda")
                for images, pixels, cut in loader:
                    tiles.update(cut)
                    if pixels is not None:
                        scores = model.logits(model.normalize(pixels.to(device, non_blocking=True).float().div_(255))).softmax(dim=1)
                        best = scores.max(dim=1)
                        positions = torch.tensor([place[image] for image in images])
                        classes[positions], probabilities[positions] = best.indices.cpu(), best.values.float().cpu()
            if number == 0 and device is not None and world > 1:
                # Each image's prediction was made by one rank (the others hold -1 and 0): the sum is exact.
                shared = torch.stack([classes.double() + 1, probabilities.double()]).to(device)
                dist.all_reduce(shared)
                classes, probabilities = (shared[0] - 1).long().cpu(), shared[1].float().cpu()
            for info in group:
                folder = out / "crops" / info.path
                folder.mkdir(parents=True, exist_ok=True)
                strips = [[tiles[info.name, unit, slot] for slot in range(len(unit_examples))] for unit, unit_examples in enumerate(examples[info.name])]
                for unit, picture in enumerate(encoders.map(_strip_webp, strips)):
                    (folder / f"{unit}.webp").write_bytes(picture)
            del tiles
        for info in dealt:
            units = examples[info.name]
            if device is not None:
                for example in (example for unit in units for example in unit):
                    position = place[example["image"]]
                    example["predicted"] = [str(model.classes[int(classes[position])]), float(probabilities[position])]
            _write_json(out / "layers" / f"{info.path}.json", {"layer": info.name, "path": info.path, "units": units})


def _scaled(height: int, width: int, crop_size: int) -> tuple[int, int]:
    """A crop's size in its strip: at most ``crop_size`` pixels on its longer side."""
    scale = min(1.0, crop_size / max(height, width))
    return (height, width) if scale >= 1.0 else (max(1, round(height * scale)), max(1, round(width * scale)))


def _tile_bytes(crop, crop_size: int, channels: int) -> int:
    height, width = _scaled(crop[2], crop[3], crop_size)
    return height * width * channels


def _tile(pixels: np.ndarray, crop, crop_size: int) -> np.ndarray:
    """The (H, W, C) uint8 crop ``crop`` = (top, left, height, width) of ``pixels``, scaled down to fit ``crop_size``."""
    top, left, height, width = crop
    tile = pixels[top : top + height, left : left + width]
    if _scaled(height, width, crop_size) != (height, width):
        small_height, small_width = _scaled(height, width, crop_size)
        picture = Image.fromarray(tile.squeeze(-1) if tile.shape[-1] == 1 else tile)
        tile = np.asarray(picture.resize((small_width, small_height), Image.BOX))
        tile = tile[..., None] if tile.ndim == 2 else tile
    return np.ascontiguousarray(tile)


def _strip_webp(tiles: list[np.ndarray]) -> bytes:
    strip = np.concatenate(tiles, axis=1)
    return encode(strip.squeeze(-1) if strip.shape[-1] == 1 else strip, "webp", quality=90)


def _as_is(item):
    return item


class _Cutter(torch.utils.data.Dataset):
    """The after-scan reading, one job per item, in DataLoader workers: a job's images
    decoded, the crops ``cuts`` asks of them cut and scaled, and (for a prediction job) the
    images themselves, stacked, for the model."""

    def __init__(self, dataset: ImageFiles, jobs: list[tuple[list[int], bool]], cuts: dict[int, list], crop_size: int) -> None:
        self.dataset, self.jobs, self.cuts, self.crop_size = dataset, jobs, cuts, crop_size

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, job: int):
        images, predict = self.jobs[job]
        pixels, tiles = [], {}
        for image in images:
            tensor = self.dataset[image][1]
            if predict:
                pixels.append(tensor)
            array = tensor.permute(1, 2, 0).numpy()
            for layer, unit, slot, crop in self.cuts.get(image, ()):
                tiles[layer, unit, slot] = _tile(array, crop, self.crop_size)
        return images, torch.stack(pixels) if predict else None, tiles


def _visualization_size(model) -> tuple[int, int]:
    """The model's input size, at most 128 pixels on the longer side (as the command line's maximize)."""
    height, width = model.input_size[1:]
    scale = min(1.0, 128 / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _write_visualizations(out: Path, model, info, steps: int, device: torch.device) -> None:
    """One WebP per unit: the image that maximizes its mean response (seed 0)."""
    from .engine.optvis import QUALITY_PRESETS, maximize

    folder = out / "visualizations" / info.path
    folder.mkdir(parents=True, exist_ok=True)
    # The mean response on every layer, the first conv included (not maximize's default there, the middle
    # unit): stored atlases and the unit view show one kind of picture, whole, not a crop.
    images = maximize(model, info.name, steps=steps, size=_visualization_size(model), seed=0, device=device,
                      objective="channel", **QUALITY_PRESETS["high"])
    for unit, image in enumerate(images):
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        (folder / f"{unit}.webp").write_bytes(encode(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, "webp", quality=90))


def _manifest(model, dataset: ImageFiles, chosen, fields, k: int, crop_size: int, visualization_steps: int | None, predicts: bool) -> dict:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": model.name, "weights": model.weights, "fingerprint": weights_fingerprint(model),
                  "input_size": list(model.input_size), "mean": list(model.mean), "std": list(model.std)},
        "data": {"kind": dataset.kind, "images": len(dataset), "fingerprint": dataset.fingerprint()},
        "k": k,
        "response": "the input of the layer's activation (after its BatchNorm, where it has one; the conv's own output where no activation follows), strongest over positions",
        "predicted": "the model's most probable class for the whole image and its probability (softmax of the class scores)" if predicts else None,
        "crop_size": crop_size,
        "layers": [
            {
                "name": info.name, "path": info.path, "units": info.out_channels, "output_shape": list(info.output_shape),
                "receptive_field": fields[info.name].as_dict(),
                "examples": f"layers/{info.path}.json", "crops": f"crops/{info.path}/{{unit}}.webp",
            }
            | ({"visualizations": f"visualizations/{info.path}/{{unit}}.webp"} if visualization_steps else {})
            for info in chosen
        ],
    }
    if visualization_steps:
        height, width = _visualization_size(model)
        manifest["visualization"] = {"method": "cnn_widgets.engine.maximize, quality preset 'high', objective 'channel', seed 0",
                                     "steps": visualization_steps, "size": [height, width]}
    return manifest


def _write_json(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(content, indent=1, allow_nan=False) + "\n")
    os.replace(partial, path)


# -- reading a store: files from others are data, checked before use ---------------------------
#
# A store is something people download and share. Every file is read as data (JSON and WebP, never a
# pickle), only from inside the store (no absolute paths, no "..", no symlink out of it), within a size
# bound, and every field a view uses is checked for its type and range; a bad file raises ValueError
# naming the file and the field.

MAX_MANIFEST_BYTES = 16 << 20
MAX_EXAMPLES_BYTES = 512 << 20  # also at most 4 KiB per example the manifest announces
MAX_PICTURE_PIXELS = 64_000_000  # as an uploaded image (cnn_widgets.images)


def _shown(value) -> str:
    """A value for an error message: its repr, cut short (a hostile file may hold anything)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field_error(path: Path, field: str, wanted: str, value) -> ValueError:
    return ValueError(f"the atlas file {path}: {field} must be {wanted}, got {_shown(value)}")


def _count(path: Path, field: str, value, low: int = 0, high: "int | None" = None) -> int:
    """An int (not a bool) in [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        wanted = f"an integer from {low}" + (f" to {high}" if high is not None else "")
        raise _field_error(path, field, wanted, value)
    return value


def _number(path: Path, field: str, value, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number (not a bool) in [low, high]."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        raise _field_error(path, field, "a finite number" + (f" from {low} to {high}" if math.isfinite(low) else ""), value)
    return float(value)


def _text(path: Path, field: str, value, optional: bool = False) -> "str | None":
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not optional and not value):
        raise _field_error(path, field, "a text" + (" or null" if optional else " (not empty)"), value)
    return value


def _mapping(path: Path, field: str, value) -> dict:
    if not isinstance(value, dict):
        raise _field_error(path, field, "a JSON object", value)
    return value


def _sizes(path: Path, field: str, value, length: int) -> list[int]:
    if not isinstance(value, list) or len(value) != length:
        raise _field_error(path, field, f"a list of {length} positive integers", value)
    return [_count(path, f"{field}[{i}]", size, 1) for i, size in enumerate(value)]


def _refuse_constant(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


def _read_json(path: Path, limit: int):
    """A JSON file of the store, read as data: a regular file of at most ``limit`` bytes, standard
    JSON only (no NaN or Infinity)."""
    if not path.is_file():
        raise ValueError(f"the atlas file {path} must be a regular file in the store, and it is missing or is not one")
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"the atlas file {path} is {size:,} bytes; at most {limit:,} bytes are read for it")
    try:
        return json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, NaN, a 5,000-digit integer, deep nesting
        raise ValueError(f"the atlas file {path} must be standard JSON (UTF-8, no NaN or Infinity): {str(error)[:200]}") from None


def _inside(folder: Path, path: Path, field: str, relative) -> Path:
    """``relative`` (a field of ``path``) as a regular file inside the store ``folder``."""
    text = _text(path, field, relative)
    if "\\" in text or "\0" in text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or ".." in text.split("/"):
        raise _field_error(path, field, "a relative path inside the store (no '..', no absolute path)", text)
    root = folder.resolve()
    target = (folder / text).resolve()
    if not target.is_relative_to(root):
        raise _field_error(path, field, f"a file inside the store {root} (it leads out of it, through a link)", text)
    return target


def _picture(path: Path, field: str, target: Path, max_height: int, max_width: int, columns: int = 1) -> Image.Image:
    """A WebP of the store, decoded only once its header says it fits ``max_height`` x ``max_width``
    (and splits into ``columns`` equal crops): no other image format is opened, so no other decoder
    runs, and a picture that claims billions of pixels is refused before any is decoded."""
    if not target.is_file():
        raise ValueError(f"the atlas picture {target} ({field} of {path}) must be a regular file in the store, and it is missing or is not one")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(target, formats=["WEBP"])
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"the atlas picture {target} ({field} of {path}) must be a WebP image: {str(error)[:200]}") from None
    width, height = picture.size
    if not (1 <= height <= max_height and 1 <= width <= max_width and width % columns == 0 and width * height <= MAX_PICTURE_PIXELS):
        picture.close()
        raise ValueError(f"the atlas picture {target} ({field} of {path}) is {width}x{height} pixels; it must be at most "
                         f"{max_width}x{max_height}" + (f", {columns} crops of equal width" if columns > 1 else ""))
    try:
        picture.load()
    except (OSError, ValueError) as error:
        raise ValueError(f"the atlas picture {target} ({field} of {path}) must be a whole WebP image: {str(error)[:200]}") from None
    return picture


def _pattern(path: Path, field: str, value) -> str:
    text = _text(path, field, value)
    if text.count("{unit}") != 1 or text.replace("{unit}", "").count("{") or text.replace("{unit}", "").count("}"):
        raise _field_error(path, field, "a path with '{unit}' once and no other braces", text)
    return text


def _check_manifest(path: Path, manifest) -> dict:
    """An atlas manifest (read from ``path``), checked field by field; ValueError names the first bad one."""
    _mapping(path, "the manifest", manifest)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cnn-widgets atlas manifest: its format must be {FORMAT!r}, got {_shown(manifest.get('format'))}")
    if manifest.get("version") != VERSION or isinstance(manifest.get("version"), bool):
        raise _field_error(path, "version", f"{VERSION} (the only version this cnn-widgets reads)", manifest.get("version"))
    model = _mapping(path, "model", manifest.get("model"))
    _text(path, "model.name", model.get("name"))
    _text(path, "model.weights", model.get("weights"), optional=True)
    _text(path, "model.fingerprint", model.get("fingerprint"), optional=True)
    channels = _sizes(path, "model.input_size", model.get("input_size"), 3)[0]
    for key in ("mean", "std"):
        values = model.get(key)
        if not isinstance(values, list) or len(values) != channels:
            raise _field_error(path, f"model.{key}", f"a list of {channels} numbers (one per input channel)", values)
        for i, value in enumerate(values):
            _number(path, f"model.{key}[{i}]", value)
    data = _mapping(path, "data", manifest.get("data"))
    _count(path, "data.images", data.get("images"))
    _count(path, "k", manifest.get("k"), 1)
    _count(path, "crop_size", manifest.get("crop_size"), 1)
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _field_error(path, "layers", "a list of at least one layer", layers)
    seen = set()
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        _mapping(path, where, layer)
        for key in ("name", "path"):
            value = _text(path, f"{where}.{key}", layer.get(key))
            if value in seen and not (key == "path" and value == layer.get("name")):  # a ResNet's names are their paths
                raise _field_error(path, f"{where}.{key}", "a layer name or module path not used by another layer", value)
            seen.add(value)
        _count(path, f"{where}.units", layer.get("units"), 1)  # units = output_shape[0] is checked against the model (check_model)
        _sizes(path, f"{where}.output_shape", layer.get("output_shape"), 3)
        _text(path, f"{where}.examples", layer.get("examples"))
        _pattern(path, f"{where}.crops", layer.get("crops"))
        if "visualizations" in layer:
            _pattern(path, f"{where}.visualizations", layer["visualizations"])
            settings = _mapping(path, "visualization", manifest.get("visualization"))
            _count(path, "visualization.steps", settings.get("steps"), 1)
            _sizes(path, "visualization.size", settings.get("size"), 2)
    return manifest


def _check_examples(path: Path, content, entry: dict, manifest: dict) -> list[list[dict]]:
    """The units of one layer's examples file, each example checked (see docs/atlas.md)."""
    _mapping(path, "the examples file", content)
    for key, expected in (("layer", entry["name"]), ("path", entry["path"])):
        if content.get(key) != expected:
            raise _field_error(path, key, f"{expected!r}, as in the manifest", content.get(key))
    units = content.get("units")
    if not isinstance(units, list) or len(units) != entry["units"]:
        raise _field_error(path, "units", f"a list of {entry['units']} units (one list of examples per unit, as the manifest says)",
                           units if not isinstance(units, list) else f"a list of {len(units)}")
    k, images = manifest["k"], manifest["data"]["images"]
    height, width = entry["output_shape"][1:]
    for unit, examples in enumerate(units):
        if not isinstance(examples, list) or len(examples) > k:
            raise _field_error(path, f"units[{unit}]", f"a list of at most {k} examples", examples)
        for rank, example in enumerate(examples):
            where = f"units[{unit}][{rank}]"
            _mapping(path, where, example)
            _count(path, f"{where}.image", example.get("image"), 0, max(images - 1, 0))
            _text(path, f"{where}.id", example.get("id"), optional=True)
            _text(path, f"{where}.label", example.get("label"), optional=True)
            if example.get("value") is not None:
                _number(path, f"{where}.value", example["value"])
            _count(path, f"{where}.row", example.get("row"), 0, height - 1)
            _count(path, f"{where}.column", example.get("column"), 0, width - 1)
            if "predicted" in example:
                predicted = example["predicted"]
                if not isinstance(predicted, list) or len(predicted) != 2:
                    raise _field_error(path, f"{where}.predicted", "a [class name, probability] pair", predicted)
                _text(path, f"{where}.predicted[0]", predicted[0])
                _number(path, f"{where}.predicted[1]", predicted[1], 0.0, 1.0)
    return units


class Atlas:
    """A finished atlas store, read back: the manifest, each unit's examples and crops.

    Made by :func:`open_atlas`; see :func:`atlas` for an example.
    """

    def __init__(self, folder: Path, manifest: dict) -> None:
        self.folder = folder
        self.manifest = _check_manifest(folder / MANIFEST, manifest)
        self._layers = {layer["name"]: layer for layer in manifest["layers"]} | {layer["path"]: layer for layer in manifest["layers"]}
        self._units: dict[str, list] = {}

    @property
    def layer_names(self) -> list[str]:
        return [layer["name"] for layer in self.manifest["layers"]]

    def _layer(self, layer: str) -> dict:
        if layer not in self._layers:
            raise ValueError(f"layer {layer!r} is not in this atlas; valid choices: {', '.join(self.layer_names)}")
        return self._layers[layer]

    def examples(self, layer: str, unit: int) -> list[dict]:
        """The unit's top examples, best first: image index and id, label, value, row, column,
        crop box and, when the store has it, ``predicted``: the model's (class, probability)
        for the image, as :class:`~cnn_widgets.DatasetExamples` gives for a scanned dataset."""
        entry = self._layer(layer)
        if not isinstance(unit, int) or isinstance(unit, bool) or not 0 <= unit < entry["units"]:
            raise ValueError(f"unit must be in 0-{entry['units'] - 1} for {layer}, got {unit!r}")
        if entry["name"] not in self._units:
            manifest = self.folder / MANIFEST
            path = _inside(self.folder, manifest, f"layers[{entry['name']}].examples", entry["examples"])
            limit = min(MAX_EXAMPLES_BYTES, 65536 + entry["units"] * self.manifest["k"] * 4096)
            units = _check_examples(path, _read_json(path, limit), entry, self.manifest)
            for example in (example for examples in units for example in examples if "predicted" in example):
                example["predicted"] = tuple(example["predicted"])  # a JSON pair: (class, probability)
            self._units[entry["name"]] = units
        return self._units[entry["name"]][unit]

    def crops(self, layer: str, unit: int) -> Image.Image:
        """The unit's crops side by side (one picture, best first)."""
        count = len(self.examples(layer, unit))  # validates
        entry, size = self._layer(layer), self.manifest["crop_size"]
        field = f"layers[{entry['name']}].crops"
        target = _inside(self.folder, self.folder / MANIFEST, field, entry["crops"].replace("{unit}", str(unit)))
        return _picture(self.folder / MANIFEST, field, target, size, size * max(count, 1), max(count, 1))

    def visualization(self, layer: str, unit: int) -> "Image.Image | None":
        """The unit's feature visualization, or None when the atlas was made without them."""
        self.examples(layer, unit)  # validates
        entry = self._layer(layer)
        if "visualizations" not in entry:
            return None
        field = f"layers[{entry['name']}].visualizations"
        target = _inside(self.folder, self.folder / MANIFEST, field, entry["visualizations"].replace("{unit}", str(unit)))
        height, width = self.manifest["visualization"]["size"]
        return _picture(self.folder / MANIFEST, field, target, height, width)

    def check_model(self, model) -> None:
        """Raise ValueError, naming what differs, unless ``model`` is the one the atlas was
        made of: the same name, weights (by fingerprint), input size and normalization, and
        the same conv layers (module path, units, output shape) for every layer of the atlas.

        >>> import cnn_widgets as cw, tempfile
        >>> store = tempfile.mkdtemp()
        >>> folder = Path(store) / "images"; folder.mkdir()
        >>> from cnn_widgets.models.datasets import load_fashion_mnist
        >>> for i, picture in enumerate(load_fashion_mnist("test")[0][:4].numpy()):
        ...     Image.fromarray(picture).save(folder / f"{i}.png")
        >>> _ = atlas(cw.load_model("fashion-cnn"), folder, Path(store) / "atlas", layers="block1_conv1", k=2, progress=False)
        >>> open_atlas(Path(store) / "atlas").check_model(cw.load_model("fashion-cnn", weights=None))
        Traceback (most recent call last):
        ...
        ValueError: the atlas at ... does not match this model: weights: the atlas has fashion-cnn with weights 'shipped' (fingerprint ...), this model has weights 'none' (fingerprint ...). An atlas opens only with the model it was made of (...)
        """
        model = as_model(model)
        made = self.manifest["model"]
        differences = []
        if made["name"] != model.name:
            differences.append(f"model: the atlas is of {made['name']!r}, this model is {model.name!r}")
        else:
            fingerprint = weights_fingerprint(model)
            if made.get("fingerprint") not in (None, fingerprint):
                differences.append(f"weights: the atlas has {made['name']} with weights {made['weights']!r} (fingerprint {made['fingerprint'][:8]}), "
                                   f"this model has weights {model.weights!r} (fingerprint {fingerprint[:8]})")
        if list(made["input_size"]) != list(model.input_size):
            differences.append(f"input size: the atlas's is {tuple(made['input_size'])}, this model's is {tuple(model.input_size)}")
        if [round(v, 6) for v in made["mean"]] != [round(float(v), 6) for v in model.mean] or [round(v, 6) for v in made["std"]] != [round(float(v), 6) for v in model.std]:
            differences.append(f"normalization: the atlas's mean/std are {made['mean']}/{made['std']}, this model's {list(model.mean)}/{list(model.std)}")
        names = set(model.layer_names)
        for entry in self.manifest["layers"]:
            if entry["name"] not in names:
                differences.append(f"layer {entry['name']!r} ({entry['path']}) of the atlas is not a conv layer of this model")
                continue
            info = model.layer(entry["name"])
            mine = (info.path, info.out_channels, list(info.output_shape))
            theirs = (entry["path"], entry["units"], list(entry["output_shape"]))
            if mine != theirs:
                differences.append(f"layer {entry['name']!r}: the atlas has module {theirs[0]}, {theirs[1]} units, output {tuple(theirs[2])}; "
                                   f"this model has module {mine[0]}, {mine[1]} units, output {tuple(mine[2])}")
        if differences:
            raise ValueError(f"the atlas at {self.folder} does not match this model: " + "; ".join(differences)
                             + ". An atlas opens only with the model it was made of (same name, weights, input size, normalization and layers)")


def open_atlas(store: "str | os.PathLike") -> Atlas:
    """Open a finished atlas store (see :func:`atlas` for an example)."""
    folder = Path(store)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no finished atlas at {folder} (no {MANIFEST}; a run still going or stopped has only checkpoints)")
    return Atlas(folder, _read_json(path, MAX_MANIFEST_BYTES))
