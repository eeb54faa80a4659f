"""Image datasets on disk, read by index: an image-folder tree (the class is the
folder's name) or tar shards in WebDataset layout.

Only the list of images is built up front (file names; for tar shards, each
member's offset, read from the headers with the standard library's ``tarfile``);
the images themselves are read and decoded in ``__getitem__``, which runs in
DataLoader worker processes, so decoding scales with the workers.

Every image has a global index (its place in a fixed order: sorted file paths,
or shards sorted by name and members in tar order) and an id (its path relative
to the folder, or ``shard.tar/key``), the same in every process.
"""
from __future__ import annotations

import glob
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..images import _convert
from .examples import IMAGE_SUFFIXES

# WebDataset: a sample is the run of tar members that share a key (the path up to the first
# dot of the file name); the extensions say what each member is. "cls" holds the class.
WEBDATASET_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "ppm", "bmp", "tif", "tiff")


@dataclass(frozen=True)
class ImageRecord:
    """Where one image is: a file (``offset`` -1) or ``size`` bytes at ``offset`` in a tar shard."""

    id: str
    label: str | None
    file: str
    offset: int = -1
    size: int = -1


class ImageFiles(torch.utils.data.Dataset):
    """The images under ``path`` as (global index, uint8 pixels (C, H, W) at ``size``).

    ``path``: a folder of images (any depth; the class of ``root/cat/1.jpg`` is
    ``cat``), a ``.tar`` shard, a folder of ``.tar`` shards, or a glob pattern
    such as ``"shards/train-*.tar"``. ``channels`` 1 reads gray, 3 RGB.

    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "boot").mkdir()
    >>> Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "boot" / "a.png")
    >>> files = ImageFiles(root, channels=1, size=(4, 4))
    >>> files.records[0].id, files.records[0].label, files[0][1].shape
    ('boot/a.png', 'boot', torch.Size([1, 4, 4]))
    """

    def __init__(self, path: "str | os.PathLike", channels: int, size: tuple[int, int]) -> None:
        self.path = str(path)
        self.channels = int(channels)
        self.size = (int(size[0]), int(size[1]))
        folder = Path(path)
        if folder.is_dir():
            images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            shards = sorted(folder.glob("*.tar"))
            if images:
                self.kind = "image-folder"
                self.records = [_file_record(folder, image) for image in images]
            elif shards:
                self.kind = "webdataset"
                self.records = _tar_records(shards)
            else:
                raise ValueError(f"data: no images ({', '.join(IMAGE_SUFFIXES)}) and no .tar shards in {folder}")
        else:
            shards = [Path(p) for p in sorted(glob.glob(str(path)))] if any(c in str(path) for c in "*?[") else [folder]
            if not shards or not all(p.is_file() for p in shards):
                raise FileNotFoundError(f"data: {path} is not a folder of images, a .tar shard, a folder of shards or a glob pattern that matches shards")
            self.kind = "webdataset"
            self.records = _tar_records(shards)
        if not self.records:
            raise ValueError(f"data: {path} holds no images")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        record = self.records[index]
        if record.offset < 0:
            with open(record.file, "rb") as handle:
                data = handle.read()
        else:
            with open(record.file, "rb") as handle:
                handle.seek(record.offset)
                data = handle.read(record.size)
        return index, self.pixels(data, record.id)

    def pixels(self, data: bytes, origin: str) -> torch.Tensor:
        """Decode, convert to the model's channels and resize as :func:`cnn_widgets.images.to_tensor` does."""
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception as error:
            raise ValueError(f"data: cannot decode {origin} as an image ({error})") from error
        image = _convert(image, "L" if self.channels == 1 else "RGB")
        if (image.height, image.width) != self.size:
            image = image.resize((self.size[1], self.size[0]), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        if array.ndim == 2:
            array = array[:, :, None]
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()

    def fingerprint(self) -> str:
        """A hash of the image list (ids, places, sizes): the same data, the same fingerprint."""
        digest = hashlib.blake2b(digest_size=16)
        for record in self.records:
            digest.update(f"{record.id}\0{record.label}\0{record.offset}\0{record.size}\n".encode())
        return digest.hexdigest()


def _file_record(root: Path, image: Path) -> ImageRecord:
    relative = image.relative_to(root)
    label = relative.parts[0] if len(relative.parts) > 1 else None
    return ImageRecord(id=relative.as_posix(), label=label, file=str(image))


def _tar_records(shards: list[Path]) -> list[ImageRecord]:
    records = []
    for shard in shards:
        if shard.suffix != ".tar":
            raise ValueError(f"data: {shard} is not an uncompressed .tar shard (images are read at their offsets, so shards cannot be compressed)")
        samples: dict[str, dict] = {}
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                directory, _, name = member.name.rpartition("/")
                stem, dot, extension = name.partition(".")
                if not dot:
                    continue
                key = f"{directory}/{stem}" if directory else stem
                sample = samples.setdefault(key, {})
                extension = extension.lower()
                if extension in WEBDATASET_IMAGE_EXTENSIONS and "image" not in sample:
                    sample["image"] = (member.offset_data, member.size)
                elif extension == "cls":
                    sample["label"] = tar.extractfile(member).read().decode("utf-8", "replace").strip()
        for key, sample in samples.items():
            if "image" in sample:
                offset, size = sample["image"]
                records.append(ImageRecord(id=f"{shard.name}/{key}", label=sample.get("label"), file=str(shard), offset=offset, size=size))
    return records
