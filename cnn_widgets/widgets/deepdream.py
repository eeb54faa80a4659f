"""DeepDream: let the network exaggerate what it sees in a photo, live in the widget.

Press Run and :func:`cnn_widgets.engine.optvis.dream` works in a background
thread: every finished frame of the dream loop appears as it is done, a progress
bar and a status line follow the steps, and Stop keeps the frames so far. A
frame player (slider and Play/Pause) cycles through the frames in the browser.
Finished dreams are cached per (image, settings), so coming back to settings
that were run before is instant; a run with fewer frames reuses a longer one,
because frame k does not depend on how many frames follow it.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

import numpy as np
import traitlets
from PIL import Image

from .. import render
from ..engine.activations import weights_version
from ..engine.optvis import dream
from ..engine.optvis.deepdream import octave_sizes
from ..images import SAMPLE_NAMES
from ..models import Model, as_model
from ..frontend import bundled
from .base import BaseWidget, LayerChoice
from .image_input import ImageInput
from .messages import handles
from .pictures import Picture, encode_picture
from .tile_viewer import enlarge
from .worker import RunControls

DISPLAY_SIZE = 320  # tiny images (28x28) are enlarged by an integer factor to about this size
THUMBNAIL_SIZE = 96  # the photo beside the dream: enlarged or shrunk to about this size
MAX_SIDE = 512  # larger photos are shrunk first: a dream step costs a forward and a backward pass
MAX_FRAMES = 120
CACHE_SIZE = 16  # finished dreams kept per widget (the least recently used go first)
PANEL_GAP = 8  # white pixels around and between the dream and the original in the saved picture
STATUS_EVERY_S = 0.1  # progress and status reach the browser at most this often

# Trait names of the dream's settings, in the order the engine takes them.
SETTINGS = ("layer", "filter", "octaves", "octave_scale", "steps", "step_size", "jitter", "smoothing", "frames", "zoom", "seed")
SMALL_INPUT = 64  # models whose input is at most this many pixels get the small-model defaults


def default_settings(model: Model) -> dict:
    """DeepDream's defaults for a model. A small-input model (fashion-cnn, 28 px) dreams on its
    photo enlarged 3 times (``dream_size``): at 28 px there is no room for the patterns a dream
    grows, at 84 px they tile the picture; 3 octaves of 12 steps of 0.03, jitter and smoothing
    scaled to that size. Larger models dream on the photo as it is (at most 512 px) with the
    classic settings (4 octaves of 10 steps of 0.01, jitter 32). One frame: the dream of the
    photo itself (more frames make the zooming dream loop, which soon leaves the photo behind).

    >>> import cnn_widgets as cw
    >>> default_settings(cw.load_model("fashion-cnn"))["dream_size"]
    84
    """
    side = model.input_size[1]
    if side <= SMALL_INPUT:
        size = 3 * side
        return {"dream_size": size, "octaves": 3, "octave_scale": 1.4, "steps": 12, "step_size": 0.03,
                "jitter": max(2, size // 14), "smoothing": 0.5, "frames": 1}
    return {"dream_size": 0, "octaves": 4, "octave_scale": 1.4, "steps": 10, "step_size": 0.01,
            "jitter": 32, "smoothing": 1.0, "frames": 1}


class DeepDream(ImageInput, LayerChoice, BaseWidget, RunControls):
    """DeepDream of a photo for a conv layer (or one of its filters), with a frame player
    for the "let the network dream" loop: each frame is the last one zoomed in by
    ``zoom`` and dreamed on again.

    ``image`` is anything :func:`cnn_widgets.load_image` takes, or a sample name
    (default: ``"sneaker"`` for 1-channel models, ``"cat"`` otherwise); photos
    larger than 512 px are shrunk first, and ``dream_size`` (a photo whose shorter
    side is smaller is enlarged to it before dreaming; 0 for never) and the other settings default per model
    (:func:`default_settings`: fashion-cnn's 28 px photos are dreamed at 84 px).
    The view shows the original beside the dream, at the same size. ``layer`` is a conv layer (default: the
    middle one). ``settings`` are the traits ``filter`` (-1, the default, for the
    whole layer), ``octaves``, ``octave_scale``, ``steps`` (per octave),
    ``step_size``, ``jitter``, ``smoothing``, ``frames``, ``zoom`` and ``seed``;
    see :func:`cnn_widgets.engine.optvis.dream`.

    :meth:`run` dreams in the background (``run(wait=True)`` blocks);
    :attr:`dream_frames` are then the frames (PIL images), ``frame_index`` the one shown.

    >>> import cnn_widgets as cw
    >>> widget = cw.DeepDream(cw.load_model("fashion-cnn"), "sneaker", layer="block2_conv1", steps=2, frames=3)
    >>> widget.run(wait=True)
    >>> widget.status.startswith("done"), len(widget.dream_frames), widget.dream_frames[0].size
    (True, 3, (84, 84))
    """

    _esm = bundled("deepdream.js")
    _css = bundled("deepdream.css")

    title = traitlets.Unicode("").tag(sync=True)

    layer = traitlets.Unicode("").tag(sync=True)
    layer_options = traitlets.List().tag(sync=True)
    filter = traitlets.Int(-1).tag(sync=True)  # -1: the whole layer
    filter_count = traitlets.Int(0).tag(sync=True)
    octaves = traitlets.Int(4).tag(sync=True)
    octave_scale = traitlets.Float(1.4).tag(sync=True)
    steps = traitlets.Int(10).tag(sync=True)
    step_size = traitlets.Float(0.01).tag(sync=True)
    jitter = traitlets.Int(32).tag(sync=True)
    smoothing = traitlets.Float(1.0).tag(sync=True)
    frames = traitlets.Int(4).tag(sync=True)  # frames of the dream loop; the pictures are ``dream_frames``
    dream_size = traitlets.Int(0).tag(sync=True)  # a photo whose shorter side is smaller is enlarged to it before dreaming; 0: never
    zoom = traitlets.Float(1.05).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)

    sample = traitlets.Unicode("").tag(sync=True)  # the shipped sample dreamed on, "" for the user's own image
    sample_options = traitlets.List().tag(sync=True)  # [{"name", "label"}]: samples like the model's pictures first
    image_png = Picture().tag(sync=True)  # thumbnail of the photo
    photo_png = Picture().tag(sync=True)  # the photo at display size, shown until there are frames
    image_name = traitlets.Unicode("").tag(sync=True)

    frames_png = traitlets.List(Picture()).tag(sync=True)  # the dream frames at display size
    frame_index = traitlets.Int(0).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model, image=None, layer=None, **settings) -> None:
        self.model: Model = as_model(model)
        self._lock = threading.RLock()  # the cache and what is shown
        self._cache: OrderedDict[tuple, list[Image.Image]] = OrderedDict()
        self._frames: list[Image.Image] = []  # what the player shows, at the photo's size
        self._shown: list[np.ndarray] = []  # the same frames at display size
        self._pngs: list[bytes] = []  # the same frames as PNG; frames_png lags behind while a run streams them
        self._photo: Image.Image | None = None
        self._image_version = 0
        self._quiet = True
        valid = SETTINGS[1:] + ("dream_size",)
        unknown = sorted(set(settings) - set(valid))
        if unknown:
            raise TypeError(f"DeepDream got unknown settings {', '.join(unknown)}; valid: {', '.join(valid)}")
        settings = {**default_settings(self.model), **settings}
        layers = self.model.layers
        chosen = self.model.layer(layer if layer is not None else layers[len(layers) // 2].name)
        super().__init__(layer_options=self._layer_options(), layer=chosen.name, filter_count=chosen.out_channels,
                         sample_options=self._sample_options(), **settings)
        self.set_image(self._default_sample() if image is None else image)
        self._quiet = False
        self._show_current()
        self.observe(self._on_layer, names=["layer"])
        self.observe(self._on_settings, names=list(SETTINGS) + ["dream_size"])
        self.observe(self._on_sample, names=["sample"])

    # -- validation: bad values from Python raise with the valid choices ----------
    @traitlets.validate("sample")
    def _check_sample(self, proposal):
        value = proposal["value"]
        return self._check_choice("sample", value, SAMPLE_NAMES) if value else value

    @traitlets.validate("filter")
    def _check_filter(self, proposal):
        value = proposal["value"]
        count = self.model.layer(self.layer).out_channels if self.layer else 0
        if count and not -1 <= value < count:
            raise traitlets.TraitError(f"filter {value} is out of range for layer {self.layer} (valid: -1 for the whole layer, or 0-{count - 1})")
        return value

    @traitlets.validate("frame_index")
    def _check_frame_index(self, proposal):
        shown = max(1, self.frames, len(self.frames_png))
        if not 0 <= proposal["value"] < shown:
            raise traitlets.TraitError(f"frame_index {proposal['value']} is out of range (valid: 0-{shown - 1}, one of the dream's frames)")
        return proposal["value"]

    @traitlets.validate("octaves", "steps", "frames")
    def _check_count(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        top = {"octaves": 12, "steps": 10_000, "frames": MAX_FRAMES}[name]
        if not 1 <= value <= top:
            raise traitlets.TraitError(f"{name} must be between 1 and {top}, got {value}")
        return value

    @traitlets.validate("octave_scale")
    def _check_octave_scale(self, proposal):
        return self._check_number(proposal, low=1.0, low_open=True, high=4.0, hint="each octave is this many times smaller")

    @traitlets.validate("step_size")
    def _check_step_size(self, proposal):
        return self._check_number(proposal, low=0.0, low_open=True, high=1.0, hint="how far pixels in [0, 1] move per step")

    @traitlets.validate("zoom")
    def _check_zoom(self, proposal):
        return self._check_number(proposal, low=1.0, high=2.0, hint="1 for no zoom between frames")

    @traitlets.validate("smoothing")
    def _check_smoothing(self, proposal):
        return self._check_number(proposal, low=0.0, high=10.0, hint="sigma in pixels, 0 for none")

    @traitlets.validate("dream_size")
    def _check_dream_size(self, proposal):
        if not 0 <= proposal["value"] <= MAX_SIDE:
            raise traitlets.TraitError(f"dream_size must be between 0 (the photo as it is) and {MAX_SIDE} pixels, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("jitter", "seed")
    def _check_non_negative(self, proposal):
        if proposal["value"] < 0:
            raise traitlets.TraitError(f"{proposal['trait'].name} must be a non-negative integer, got {proposal['value']}")
        return proposal["value"]

    @staticmethod
    def _check_number(proposal, low: float, high: float, hint: str, low_open: bool = False) -> float:
        name, value = proposal["trait"].name, float(proposal["value"])
        below = value <= low if low_open else value < low
        if math.isnan(value) or below or value > high:
            bracket = "(" if low_open else "["
            raise traitlets.TraitError(f"{name} must be in {bracket}{low:g}, {high:g}] ({hint}), got {value:g}")
        return value

    # -- the image ------------------------------------------------------------------
    @property
    def image(self) -> Image.Image:
        """The photo being dreamed on (grayscale for 1-channel models, at most 512 px).

        >>> import cnn_widgets as cw
        >>> cw.DeepDream(cw.load_model("fashion-cnn"), "bag").image.size
        (28, 28)
        """
        return self._photo

    def set_image(self, image, name: str | None = None) -> None:
        """Dream on another image (anything :func:`cnn_widgets.load_image` takes, or a
        sample name). A bad image raises and changes nothing.

        >>> import cnn_widgets as cw
        >>> widget = cw.DeepDream(cw.load_model("fashion-cnn"))
        >>> widget.set_image("trouser")
        >>> widget.sample, widget.image.mode
        ('trouser', 'L')
        """
        picture, name = self._open_image(image, name)
        picture = picture.convert("L" if self.model.input_size[0] == 1 else "RGB")
        if max(picture.size) > MAX_SIDE:
            factor = MAX_SIDE / max(picture.size)
            picture = picture.resize((max(1, round(picture.width * factor)), max(1, round(picture.height * factor))), Image.LANCZOS)
        with self._lock:
            self._photo = picture
            with self.hold_sync():
                self.image_png = self._thumbnail(picture)
                self.photo_png = self._display(self._dreamed_photo())
                self._name_image(name)
        if not self._quiet:
            self._on_settings(None)

    def _dreamed_photo(self) -> Image.Image:
        """The photo as it is dreamed on: enlarged so that its shorter side is at least ``dream_size``."""
        picture = self._photo
        if min(picture.size) >= self.dream_size:
            return picture
        factor = self.dream_size / min(picture.size)
        size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
        return picture.resize(size, Image.BICUBIC)

    # -- settings -------------------------------------------------------------------
    def settings(self) -> dict:
        """The dream's settings as :func:`cnn_widgets.engine.optvis.dream` takes them.

        >>> import cnn_widgets as cw
        >>> cw.DeepDream(cw.load_model("fashion-cnn"), layer="block1_conv2", frames=2).settings()["frames"]
        2
        """
        values = {name: getattr(self, name) for name in SETTINGS}
        values["filter"] = None if values["filter"] < 0 else values["filter"]
        return values

    def _key(self) -> tuple:
        """What a dream depends on, except the number of frames (frame k does not depend on it)."""
        values = self.settings()
        values.pop("frames")
        values["dream_size"] = self.dream_size
        values["layer"] = self.model.layer(values["layer"]).path
        return (self._image_version, weights_version(self.model), tuple(sorted(values.items())))

    def _on_layer(self, _change) -> None:
        self.filter_count = self.model.layer(self.layer).out_channels
        if self.filter >= self.filter_count:
            self.filter = -1

    def _on_settings(self, _change) -> None:
        if self._quiet:
            return
        if _change is not None and _change["name"] == "dream_size" and self._photo is not None:
            self.photo_png = self._display(self._dreamed_photo())
        if self.running:
            self._worker.stop()  # its dream no longer matches what is shown; do not block the message loop
        self._show_errors(self._show_current)

    # -- running ----------------------------------------------------------------------
    def _cached(self, key: tuple, count: int) -> list[Image.Image] | None:
        with self._lock:
            frames = self._cache.get(key)
            if frames is None or len(frames) < count:
                return None
            self._cache.move_to_end(key)
            return frames[:count]

    def _job(self, cancel, report) -> None:
        with self._lock:
            key, settings, photo = self._key(), self.settings(), self._dreamed_photo()
        count = settings["frames"]
        if self._cached(key, count) is not None:
            self._show_current()
            report(1.0, "already computed: shown from the cache")
            return
        finished: list[Image.Image] = []
        last_report = [0.0]
        per_frame = None

        def progress(done: int, total: int, frame) -> None:
            nonlocal per_frame
            per_frame = per_frame or max(1, total // count)
            if frame is not None:
                finished.append(frame)
                self._show_if_current(key, finished, running=True)
            now = time.monotonic()
            if frame is not None or done == total or now - last_report[0] >= STATUS_EVERY_S:
                last_report[0] = now
                current = min(count, (done - 1) // per_frame + 1) if done else 1
                report(done / total, f"frame {current}/{count} · step {done}/{total}")

        report(0.0, f"dreaming {count} frame{'s' if count > 1 else ''}")
        frames = dream(self.model, photo, progress=progress, cancel=cancel, **settings)
        if not cancel.is_set():
            with self._lock:
                previous = self._cache.get(key, [])
                if len(frames) > len(previous):
                    self._cache[key] = frames
                    self._cache.move_to_end(key)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        self._show_if_current(key, frames, running=False, stopped=cancel.is_set())

    def _show_if_current(self, key: tuple, frames: list[Image.Image], running: bool, stopped: bool = False) -> None:
        with self._lock:
            if key != self._key():
                return
            count = self.frames
            if running:
                note = f"dreaming: {len(frames)} of {count} frames finished"
            elif stopped:
                note = f"stopped: {max(0, len(frames) - 1)} of {count} frames finished, the last one as it was"
            else:
                note = ""
            self._show(list(frames), follow=True, note=note, stream=running)

    # -- what is shown ------------------------------------------------------------------
    @property
    def dream_frames(self) -> list[Image.Image]:
        """The dream frames the player shows, as PIL images at the photo's size (empty before a run).

        >>> import cnn_widgets as cw
        >>> widget = cw.DeepDream(cw.load_model("fashion-cnn"), layer="block1_conv2", steps=1, frames=2)
        >>> widget.dream_frames
        []
        >>> widget.run(wait=True); [frame.size for frame in widget.dream_frames]
        [(84, 84), (84, 84)]
        """
        with self._lock:
            return list(self._frames)

    def refresh(self) -> None:
        """Show what is current for the model as it is now: after an in-place change of its
        weights, a dream of the old weights is no longer shown (the photo, until Run).

        >>> import cnn_widgets as cw, torch
        >>> model = cw.load_model("fashion-cnn")
        >>> view = cw.DeepDream(model, layer="block1_conv2", steps=1, frames=1); view.run(wait=True)
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        >>> view.refresh(); view.dream_frames
        []
        >>> with torch.no_grad():
        ...     _ = model.module.features[0].weight.mul_(-1)
        """
        self._show_current()

    def _show_current(self) -> None:
        """Show the cached dream for the current settings, or the photo when there is none."""
        with self._lock:
            frames = self._cached(self._key(), self.frames)
            self._show(frames or [], follow=False, note="" if frames else "the photo: press Run to dream")

    def _show(self, frames: list[Image.Image], follow: bool, note: str, stream: bool = False) -> None:
        """Send ``frames`` to the player; ``follow`` moves it to the newest frame.

        ``stream`` (during a run): frames added to those already sent travel as one
        message each time, so a long dream costs one PNG per frame instead of the whole
        list per frame; ``frames_png`` gets the full list once the run ends (views that
        open mid-run ask for it, see ``_on_resync``).
        """
        with self._lock:
            same = len(frames) >= len(self._frames) and all(a is b for a, b in zip(self._frames, frames))
            known = len(self._shown) if same else 0
            shown = self._shown[:known] + [self._display(frame) for frame in frames[known:]]
            pngs = self._pngs[:known] + [encode_picture(picture) for picture in shown[known:]]
            self._frames, self._shown, self._pngs = frames, shown, pngs
            index = len(frames) - 1 if follow else min(self.frame_index, max(0, len(frames) - 1))
            streamed = stream and same and known == self._sent
            with self.hold_sync():
                if streamed:
                    if len(pngs) > known:
                        self.send({"type": "frames", "start": known}, buffers=pngs[known:])
                elif list(self.frames_png) != pngs:
                    self.frames_png = pngs
                self._sent = len(pngs)
                self.frame_index = max(0, index)
                self.caption = self._caption(note)
                self.title = self._title()

    _sent = 0  # how many frames the frontend has (in frames_png or streamed)

    @handles("resync")
    def _on_resync(self, _content, _buffers) -> None:
        """A view opened during a run lacks the streamed frames: send the whole list."""
        with self._lock:
            self.frames_png = list(self._pngs)
            self._sent = len(self._pngs)

    def _display(self, picture: Image.Image) -> np.ndarray:
        """A frame or the photo as uint8 RGB at display size (tiny images enlarged, pixels kept crisp)."""
        return enlarge(np.asarray(picture.convert("RGB")), DISPLAY_SIZE)

    @staticmethod
    def _thumbnail(picture: Image.Image) -> np.ndarray:
        """The photo at about THUMBNAIL_SIZE: tiny images enlarged crisply, big ones shrunk smoothly."""
        if max(picture.size) <= THUMBNAIL_SIZE:
            return enlarge(np.asarray(picture.convert("RGB")), THUMBNAIL_SIZE)
        small = picture.convert("RGB")
        small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.LANCZOS)
        return np.asarray(small)

    def _caption(self, note: str) -> str:
        what = "whole layer" if self.filter < 0 else f"filter {self.filter}"
        used = len(octave_sizes(self._dreamed_photo().size[::-1], self.octaves, self.octave_scale)) if self._photo else self.octaves
        octaves = f"{used} octave{'s' if used > 1 else ''}"
        if used < self.octaves:
            octaves += f" (of {self.octaves}; the photo is too small for more)"
        octaves += f" × {self.steps} steps"
        text = f"{self.layer} · {what} · {octaves} · step {self.step_size:g} · zoom {self.zoom:g} · seed {self.seed}"
        return f"{note} · {text}" if note else text

    def _title(self) -> str:
        width, height = self._photo.size if self._photo is not None else (0, 0)
        dreamed = self._dreamed_photo().size if self._photo is not None else (width, height)
        at = f", dreamed at {dreamed[0]}x{dreamed[1]}" if dreamed != (width, height) else ""
        return f"DeepDream · {self.model.label} · {self.image_name.split('#')[0]} ({width}x{height}{at})"

    # -- saving -----------------------------------------------------------------------------
    def picture(self) -> np.ndarray:
        """What the widget shows, as uint8 RGB: the current dream frame (the photo before a run)
        and the original beside it at the same size, labelled "Dream" and "Original" under them,
        :data:`PANEL_GAP` white pixels around and between them (a 28x28 photo dreamed at 84x84 is
        enlarged 3 times, to 252x252 per panel).

        >>> import cnn_widgets as cw
        >>> picture = cw.DeepDream(cw.load_model("fashion-cnn"), "sandal").picture()
        >>> picture.shape[1] == 2 * 252 + 3 * PANEL_GAP
        True
        """
        with self._lock:
            original = self._display(self._dreamed_photo())
            if self._shown:
                dreamt, label = self._shown[min(self.frame_index, len(self._shown) - 1)], "Dream"
            else:
                dreamt, label = original, "Dream (none yet: the photo; press Run)"
        if dreamt.shape != original.shape:  # a frame kept from other settings: the original at its size
            original = np.asarray(Image.fromarray(original).resize(dreamt.shape[1::-1], Image.BICUBIC))
        return render.grid(np.stack([dreamt, original]), columns=2, padding=PANEL_GAP, labels=[label, "Original"])

    def save_png(self, path) -> None:
        """Write what the widget shows (the current frame beside the original, see :meth:`picture`) to a PNG file.

        >>> import cnn_widgets as cw, tempfile, pathlib
        >>> widget = cw.DeepDream(cw.load_model("fashion-cnn"), "bag", steps=1, frames=1)
        >>> widget.run(wait=True)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     widget.save_png(pathlib.Path(folder) / "dream.png")
        """
        render.save_png(self.picture(), path)

    def save_gif(self, path, duration_ms: int = 100) -> None:
        """Write every frame, as shown, to a looping animated GIF (``duration_ms`` per frame).

        >>> import cnn_widgets as cw, tempfile, pathlib
        >>> widget = cw.DeepDream(cw.load_model("fashion-cnn"), "bag", steps=1, frames=3)
        >>> widget.run(wait=True)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     widget.save_gif(pathlib.Path(folder) / "dream.gif")
        """
        with self._lock:
            shown = list(self._shown)
        if not shown:
            raise RuntimeError("there are no dream frames yet: press Run (or call run(wait=True)) first")
        render.save_gif(shown, path, duration_ms=duration_ms)
