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
    images with the strongest response anywhere in the layer's output (the conv's
    own output, before its activation), where it is, its value, the crop of
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
                shutil.rmtree(out / part, ignore_errors=True)
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
        "response": "the conv layer's own output (before its activation), strongest over positions",
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


class Atlas:
    """A finished atlas store, read back: the manifest, each unit's examples and crops.

    Made by :func:`open_atlas`; see :func:`atlas` for an example.
    """

    def __init__(self, folder: Path, manifest: dict) -> None:
        self.folder = folder
        self.manifest = manifest
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
        if not 0 <= unit < entry["units"]:
            raise ValueError(f"unit must be in 0-{entry['units'] - 1} for {layer}, got {unit}")
        if entry["name"] not in self._units:
            units = json.loads((self.folder / entry["examples"]).read_text())["units"]
            for example in (example for examples in units for example in examples if "predicted" in example):
                example["predicted"] = tuple(example["predicted"])  # a JSON pair: (class, probability)
            self._units[entry["name"]] = units
        return self._units[entry["name"]][unit]

    def crops(self, layer: str, unit: int) -> Image.Image:
        """The unit's crops side by side (one picture, best first)."""
        self.examples(layer, unit)  # validates
        return Image.open(self.folder / self._layer(layer)["crops"].format(unit=unit))

    def visualization(self, layer: str, unit: int) -> "Image.Image | None":
        """The unit's feature visualization, or None when the atlas was made without them."""
        self.examples(layer, unit)  # validates
        pattern = self._layer(layer).get("visualizations")
        return None if pattern is None else Image.open(self.folder / pattern.format(unit=unit))

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
        ValueError: the atlas at ... does not match this model: weights: the atlas has fashion-cnn with weights 'shipped' (fingerprint ...), this model has weights 'none' (fingerprint ...)
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
            raise ValueError(f"the atlas at {self.folder} does not match this model: " + "; ".join(differences))


def open_atlas(store: "str | os.PathLike") -> Atlas:
    """Open a finished atlas store (see :func:`atlas` for an example)."""
    folder = Path(store)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no finished atlas at {folder} (no {MANIFEST}; a run still going or stopped has only checkpoints)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cnn-widgets atlas manifest")
    return Atlas(folder, manifest)
