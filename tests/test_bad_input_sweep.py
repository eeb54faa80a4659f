"""A sweep of bad input over the whole public surface: every public function of
``cnn_widgets`` and ``cnn_widgets.engine``, the ``Model`` handle's methods, every
widget constructor and every trait a person (or a frontend) sets.

Each case passes one bad value (a wrong type, a number out of range, NaN or
infinity, an empty or huge size, an unknown layer, method, class or sample
name, a hostile string, an image or tensor of the wrong shape) and asserts what
a user would notice:

- the call raises ValueError, TypeError, FileNotFoundError or traitlets.TraitError
  (never an IndexError, ZeroDivisionError, OverflowError, RuntimeError from deep
  inside torch, and never silence);
- the message names the parameter and says what is valid;
- the user's model is exactly as it was (``model_state.snapshot``);
- for a trait, every trait of the widget is exactly as it was.

``test_the_sweep_is_large_and_reports_its_counts`` prints how many cases each
function got. The cases are cheap: the shipped fashion-cnn, a tiny user model
and, where a bad value could be accepted, a small computation around it.
"""
from __future__ import annotations

import collections
import copy
import functools
import json
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import traitlets
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine

from model_state import assert_unchanged, make_user_model, snapshot

pytestmark = pytest.mark.usefixtures("one_thread")

# What a clear message says about the valid values, in the words the library uses.
VALID = re.compile(
    r"valid|must be|must have|must name|must hold|expected|one of|at least|at most|between|a range like|"
    r"pass|use |takes|need|only|can read|from \d|<=|>=|\b\d+-\d+\b|in \[|in \(|positive|finite|integer|number",
    re.IGNORECASE,
)
ERRORS = (ValueError, TypeError, FileNotFoundError, traitlets.TraitError)

# Bad values by kind. Each family is a list of (label, value).
HOSTILE = [
    ("script", "<img src=x onerror=alert(1)>"),
    ("path traversal", "../../../../etc/passwd"),
    ("NUL byte", "a\x00b"),
    ("10k characters", "x" * 10_000),
    ("empty text", ""),
    ("spaces", "   "),
]
NOT_A_NUMBER = [
    ("text", "3"),
    ("None", None),
    ("list", [3]),
    ("object", object()),
    ("complex", 1 + 2j),
]
BAD_COUNT = [  # for counts that must be a positive int
    ("zero", 0),
    ("negative", -1),
    ("fraction", 1.5),
    ("bool", True),
    ("NaN", float("nan")),
    ("infinity", float("inf")),
    ("huge", 10**12),
    ("numpy fraction", np.float64(2.5)),
    *NOT_A_NUMBER,
]
BAD_STEPS = [case for case in BAD_COUNT if case[0] != "zero"]  # zero steps: the starting image
CLAMPED = [case for case in BAD_COUNT if case[0] != "huge"]  # k and batch sizes above the count are clamped
BAD_REAL = [  # for real numbers that must be finite (and positive where it says)
    ("NaN", float("nan")),
    ("infinity", float("inf")),
    ("minus infinity", float("-inf")),
    ("numpy NaN", np.float32("nan")),
    *NOT_A_NUMBER,
]
BAD_LAYER = [
    ("unknown name", "block9_conv1"),
    ("typo", "block1_cnov1"),
    ("index past the end", 99),
    ("negative index past the start", -99),
    ("fraction", 1.5),
    ("bool", True),
    ("a parameter's path", "features.0.weight"),
    ("a module that is not in the model", nn.Conv2d(1, 1, 3)),
    ("a non-conv module path", "features.1"),
    ("raw of an unknown layer", "block9_conv1:raw"),
    ("list", ["block1_conv1"]),
    ("object", object()),
    *[(label, value) for label, value in HOSTILE if value.strip()],
]
NOT_A_LIST = [case for case in BAD_LAYER if case[0] != "list"]  # where a list of layers is valid
ANY_MODULE = [case for case in NOT_A_LIST if case[0] != "a non-conv module path"]  # CAM reads any (N, C, H, W) output
BAD_CHOICE = [
    ("unknown", "nope"),
    ("wrong case", "GRADCAM!"),
    ("number", 3),
    ("None", None),
    ("bytes", b"gradcam"),
    ("list", ["gradcam"]),
    *HOSTILE,
]
TRAIT_CHOICES = [case for case in BAD_CHOICE if case[0] != "bytes"]  # a Unicode trait decodes bytes
BAD_IMAGE = [
    ("not an image", b"not an image"),
    ("missing file", "/nonexistent/picture.png"),
    ("empty array", np.zeros((0, 0), np.uint8)),
    ("empty rows", np.zeros((0, 8, 3), np.uint8)),
    ("7 channels", np.zeros((8, 8, 7), np.uint8)),
    ("1-D array", np.zeros(8, np.uint8)),
    ("5-D tensor", torch.zeros(1, 1, 3, 8, 8)),
    ("batch of two", torch.zeros(2, 3, 8, 8)),
    ("NaN pixels", np.full((8, 8, 3), np.nan, np.float32)),
    ("infinite pixels", np.full((8, 8), np.inf)),
    ("negative pixels", np.full((8, 8), -5.0)),
    ("complex pixels", np.zeros((8, 8), np.complex64)),
    ("object array", np.array([[object()]])),
    ("nested list", [[0, 1], [1, 0]]),
    ("number", 42),
    ("empty bytes", b""),
    ("directory", "/"),
    ("ftp URL", "ftp://127.0.0.1/x.png"),
    *[(label, value) for label, value in HOSTILE if label != "empty text"],
]


@dataclass
class Case:
    function: str  # what is being called: "engine.maximize", "FeatureMaps()", "FeatureMaps.layer"
    parameter: str  # the name the message must contain (a regex, case-insensitive)
    label: str  # which bad value
    call: Callable[["Resources"], object]
    widget: Callable[["Resources"], object] | None = None  # for a trait: the widget whose traits stay
    error: tuple = ERRORS

    @property
    def id(self) -> str:
        return f"{self.function}[{self.parameter}={self.label}]"


class Resources:
    """What the cases share, made on first use: models, images and widgets."""

    @functools.cached_property
    def fashion(self) -> cw.Model:
        return cw.load_model("fashion-cnn", device="cpu")

    @functools.cached_property
    def user(self) -> cw.Model:
        return cw.load_model(make_user_model(), input_size=(3, 32, 32), classes=["a", "b", "c", "d"])

    @property
    def models(self) -> list[nn.Module]:
        return [self.fashion.module, self.user.module]

    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    color = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)

    @functools.cached_property
    def maps(self):
        return engine.feature_maps(self.fashion, self.image, layers=0)["block1_conv1"]

    @functools.cached_property
    def server(self) -> str:
        """The misbehaving local server of test_image_urls (endless, huge, trickling responses)."""
        import http.server
        import threading

        from test_image_urls import Misbehaving

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{httpd.server_port}"

    @functools.cached_property
    def store(self) -> Path:
        """A small atlas store of fashion-cnn (6 images, block1_conv1, k=2, visualizations of 1 step)."""
        from PIL import Image

        from cnn_widgets.atlas import atlas
        from cnn_widgets.models.datasets import load_fashion_mnist

        root = Path(tempfile.mkdtemp(prefix="cnn-widgets-sweep-atlas-"))
        (root / "images" / "Sneaker").mkdir(parents=True)
        for i, picture in enumerate(load_fashion_mnist("test")[0][:6].numpy()):
            Image.fromarray(picture).save(root / "images" / "Sneaker" / f"{i}.png")
        atlas(self.fashion, root / "images", root / "store", layers=["block1_conv1"], k=2, workers=0, progress=False,
              visualizations=True, visualization_steps=1, device="cpu")
        (root / "outside.json").write_text(json.dumps({"layer": "block1_conv1", "path": "features.0", "units": []}))
        return root / "store"

    def widget(self, name: str):
        """One widget of each kind, made once, settled (its background work done)."""
        cache = self.__dict__.setdefault("_widgets", {})
        if name not in cache:
            cache[name] = WIDGET_MAKERS[name](self)
        view = cache[name]
        settle(view)
        return view


WIDGET_MAKERS = {
    "FilterWeights": lambda r: cw.FilterWeights(r.fashion),
    "FeatureMaps": lambda r: cw.FeatureMaps(r.fashion, "sneaker"),
    "ActivationMaximization": lambda r: cw.ActivationMaximization(r.fashion, steps=2, size=16, filters="0-1"),
    "DeepDream": lambda r: cw.DeepDream(r.fashion, "sneaker", steps=1, octaves=1, frames=1),
    "GradCAM": lambda r: cw.GradCAM(r.fashion, "sneaker"),
    "ConvolutionExplainer": lambda r: cw.ConvolutionExplainer(r.fashion, "sneaker"),
    "DatasetExamples": lambda r: cw.DatasetExamples(r.fashion, torch.rand(6, 1, 28, 28), k=2),
    "Explorer": lambda r: cw.Explorer(r.fashion, "sneaker", dataset=None),
    "TrainingMonitor": lambda r: cw.TrainingMonitor(r.user, "cat"),
}


def settle(view) -> None:
    for part in (view, *(getattr(view, name, None) for name in ("weights", "maps", "maximization", "dream", "heatmaps", "examples"))):
        if part is not None and hasattr(part, "wait"):
            part.wait()


def traits_of(view) -> dict:
    """Every trait's value, copied so that a change made in place shows."""
    values = {}
    for name in view.trait_names():
        if name in ("comm", "log", "keys"):
            continue
        value = getattr(view, name)
        try:  # a copy, so a change made in place shows; child widgets cannot be copied (compared as they are)
            values[name] = copy.deepcopy(value) if isinstance(value, (list, dict, bytes, str, int, float, tuple)) else value
        except NotImplementedError:
            values[name] = value
    return values


CASES: list[Case] = []


def cases(function: str, parameter: str, values, call: Callable, widget=None) -> None:
    """Add one case per (label, value): ``call(resources, value)`` must refuse the value."""
    for label, value in values:
        CASES.append(Case(function, parameter, label, functools.partial(lambda r, v, c: c(r, v), v=value, c=call), widget))


# ---------------------------------------------------------------- cnn_widgets top level

cases("load_model", "source|model", [("unknown name", "resnet1000"), ("number", 42), ("None", None), ("missing file", "/nonexistent/model.pt"),
                                     ("a module without convs", nn.Linear(3, 3)), *HOSTILE[:4]],
      lambda r, v: cw.load_model(v))
cases("load_model", "weights", [("unknown", "imagenet21k"), ("number", 3), ("missing file", "/nonexistent/weights.pt"), ("list", ["shipped"])],
      lambda r, v: cw.load_model("fashion-cnn", weights=v))
cases("load_model", "device", [("unknown", "tpu"), ("number", 3.5), ("missing GPU", "cuda:7"), ("list", ["cpu"]), ("script", HOSTILE[0][1])],
      lambda r, v: cw.load_model("fashion-cnn", device=v))
cases("load_model", "input_size", [("one number", (3,)), ("zero channels", (0, 32, 32)), ("negative height", (3, -1, 32)),
                                   ("zero width", (3, 32, 0)), ("huge", (3, 100_000, 100_000)), ("fractions", (3, 32.5, 32)),
                                   ("text", "3x32x32"), ("four numbers", (1, 3, 32, 32)), ("NaN", (3, float("nan"), 32)), ("bools", (True, 32, 32))],
      lambda r, v: cw.load_model(make_user_model(), input_size=v))
cases("load_model", "mean", [("wrong length", (0.5, 0.5)), ("NaN", (float("nan"),) * 3), ("text", "0.5"), ("infinite", (float("inf"),) * 3)],
      lambda r, v: cw.load_model(make_user_model(), input_size=(3, 32, 32), mean=v, std=(1, 1, 1)))
cases("load_model", "std", [("wrong length", (1, 1)), ("zero", (0, 1, 1)), ("negative", (-1, 1, 1)), ("NaN", (float("nan"),) * 3),
                            ("text", "1"), ("infinite", (float("inf"),) * 3)],
      lambda r, v: cw.load_model(make_user_model(), input_size=(3, 32, 32), mean=(0, 0, 0), std=v))
cases("load_model", "classes", [("too few", ["a", "b"]), ("too many", [str(i) for i in range(10)]), ("one text", "abcd"),
                                ("numbers", [1, 2, 3, 4]), ("number", 4)],
      lambda r, v: cw.load_model(make_user_model(), input_size=(3, 32, 32), classes=v))
cases("load_model", "output", [("index past the end", 5), ("key of a tensor", "scores"), ("fraction", 1.5), ("object", object())],
      lambda r, v: cw.load_model(make_user_model(), input_size=(3, 32, 32), output=v).classes)
cases("load_model", "seed", [("text", "zero"), ("fraction", 0.5), ("None", None), ("list", [0])],
      lambda r, v: cw.load_model("vgg11", weights="none", seed=v, device="cpu"))
cases("load_image", "image|source", BAD_IMAGE, lambda r, v: cw.load_image(v))
URLS = [  # (label, path on the misbehaving server, load_image keywords, the parameter the message names)
    ("endless response", "/endless", {"max_bytes": 200_000}, "max_bytes"),
    ("declared 10 GB", "/huge", {}, "max_bytes"),
    ("trickled body", "/trickle-body", {"timeout": 0.5}, "timeout"),
    ("trickled headers", "/trickle-headers", {"timeout": 0.5}, "timeout"),
]
for _label, _path, _limits, _parameter in URLS:
    cases("load_image", _parameter, [(_label, (_path, _limits))], lambda r, v: cw.load_image(r.server + v[0], **v[1]))
cases("load_image", "image|url", [("closed port", "http://127.0.0.1:9/x.png"), ("no host", "http:///x.png"), ("bad port", "http://127.0.0.1:99999/x.png")],
      lambda r, v: cw.load_image(v, timeout=2))
cases("engine.feature_maps", "max_bytes", [("URL declaring 10 GB", "/huge")], lambda r, v: engine.feature_maps(r.fashion, r.server + v, cache=False))
cases("load_image", "mode", [("unknown", "CMYK"), ("number", 3), ("lower case typo", "rgbx")], lambda r, v: cw.load_image(r.color, v))
cases("load_image", "max_bytes", [("zero", 0), ("negative", -1), ("fraction", 1.5), ("text", "50MB"), ("bool", True), ("infinity", float("inf"))],
      lambda r, v: cw.load_image(r.color, max_bytes=v))
cases("load_image", "timeout", [("zero", 0), ("negative", -1), ("NaN", float("nan")), ("infinity", float("inf")), ("text", "20"), ("bool", True)],
      lambda r, v: cw.load_image(r.color, timeout=v))
cases("sample_image", "sample", [("unknown", "dog"), ("number", 3), ("None", None), *HOSTILE, ("a file name", "cat.jpg")],
      lambda r, v: cw.sample_image(v))
cases("save_html", "widgets?", [("a string", "not a widget"), ("a model", "MODEL"), ("a number", 3), ("None", None)],
      lambda r, v: cw.save_html("/tmp/cnn-widgets-sweep.html", r.fashion if v == "MODEL" else v))
cases("save_html", "title", [("number", 3), ("None", None), ("list", ["a"])],
      lambda r, v: cw.save_html("/tmp/cnn-widgets-sweep.html", r.widget("FilterWeights"), title=v))
cases("save_html", "path", [("a directory that does not exist", "/nonexistent/dir/page.html"), ("number", 3), ("None", None)],
      lambda r, v: cw.save_html(v, r.widget("FilterWeights")))
cases("export_notebook_html", "notebook", [("missing file", "/nonexistent/notebook.ipynb"), ("number", 3), ("None", None),
                                           ("not JSON", "NOTJSON"), ("a directory", "/")],
      lambda r, v: cw.export_notebook_html(_not_json() if v == "NOTJSON" else v))


# ---------------------------------------------------------------- an atlas store from someone else
# A store is downloaded and shared: each case edits one file of a good store, then opens it and reads
# everything a view reads (examples, crops, visualization). The message names the file and the field.

def _open_edited_store(r, edit) -> None:
    from cnn_widgets.atlas import open_atlas

    folder = Path(tempfile.mkdtemp(prefix="cnn-widgets-sweep-edited-")) / "store"
    shutil.copytree(r.store, folder, symlinks=True)
    edit(folder)
    store = open_atlas(folder)
    store.check_model(r.fashion)
    store.examples("block1_conv1", 0), store.crops("block1_conv1", 0), store.visualization("block1_conv1", 0)


def _manifest(change):
    def edit(folder):
        manifest = json.loads((folder / "atlas.json").read_text())
        change(manifest)
        (folder / "atlas.json").write_text(json.dumps(manifest))
    return edit


def _examples(change, name="features.0.json"):
    def edit(folder):
        content = json.loads((folder / "layers" / name).read_text())
        change(content)
        (folder / "layers" / name).write_text(json.dumps(content))
    return edit


def _first_example(key, value):
    return _examples(lambda content: content["units"][0][0].__setitem__(key, value))


def _write(relative: str, data: "bytes | Callable"):
    def edit(folder):
        path = folder / relative
        path.unlink()
        path.write_bytes(data() if callable(data) else data)
    return edit


def _link(relative: str, target: str):
    def edit(folder):
        (folder / relative).unlink()
        (folder / relative).symlink_to(folder.parent.parent / target if not target.startswith("/") else target)
    return edit


def _webp_claiming(width: int, height: int) -> bytes:
    """A 30-byte lossless WebP whose header claims width x height pixels (a decompression bomb's header)."""
    payload = b"\x2f" + ((width - 1) | ((height - 1) << 14)).to_bytes(4, "little") + b"\x00" * 8
    chunk = b"VP8L" + len(payload).to_bytes(4, "little") + payload
    return b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk


def _picture_bytes(size, kind: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, kind)
    return buffer.getvalue()


def _nested(depth: int) -> bytes:
    return b'{"format": "cnn-widgets-atlas", "version": 1, "model": ' + b"[" * depth + b"]" * depth + b"}"


def _setitem(path: str, value):
    """An edit of the manifest: the value at a dotted path (numbers index lists)."""
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]

    def change(manifest):
        node = manifest
        for part in parents:
            node = node[part]
        node[last] = value
    return change


ATLAS_MANIFEST = [  # (label, edit, the message's file and field)
    ("not JSON", _write("atlas.json", b"{not json"), r"atlas\.json.*standard JSON"),
    ("NaN in the mean", lambda f: (f / "atlas.json").write_text((f / "atlas.json").read_text().replace('"mean": [', '"mean": [NaN, ', 1)),
     r"atlas\.json.*standard JSON.*NaN"),
    ("1e999 as the std", lambda f: (f / "atlas.json").write_text(re.sub(r'"std": \[[^]]*\]', '"std": [1e999]', (f / "atlas.json").read_text())),
     r"atlas\.json: model\.std\[0\] must be a finite number"),
    ("nested 100,000 deep", _write("atlas.json", lambda: _nested(100_000)), r"atlas\.json.*standard JSON"),
    ("17 MB", _write("atlas.json", lambda: b"{" + b" " * (17 << 20) + b"}"), r"atlas\.json is .* bytes; at most"),
    ("a list", _write("atlas.json", b"[1, 2]"), r"atlas\.json: the manifest must be a JSON object"),
    ("a directory", lambda f: ((f / "atlas.json").unlink(), (f / "atlas.json").mkdir()), r"no finished atlas"),
    ("version 2", _manifest(_setitem("version", 2)), r"atlas\.json: version must be 1"),
    ("k negative", _manifest(_setitem("k", -3)), r"atlas\.json: k must be an integer from 1"),
    ("k as text", _manifest(_setitem("k", "9")), r"atlas\.json: k must be"),
    ("images negative", _manifest(_setitem("data.images", -1)), r"atlas\.json: data\.images must be"),
    ("no layers", _manifest(_setitem("layers", [])), r"atlas\.json: layers must be a list of at least one"),
    ("units as text", _manifest(_setitem("layers.0.units", "32")), r"atlas\.json: layers\[0\]\.units must be"),
    ("units 0", _manifest(_setitem("layers.0.units", 0)), r"atlas\.json: layers\[0\]\.units must be"),
    ("output shape of NaNs", lambda f: (f / "atlas.json").write_text(re.sub(r'"output_shape": \[[^]]*\]', '"output_shape": [32, NaN, 28]',
                                                                             (f / "atlas.json").read_text())), r"atlas\.json.*standard JSON"),
    ("input size negative", _manifest(_setitem("model.input_size", [1, -28, 28])), r"atlas\.json: model\.input_size\[1\] must be"),
    ("mean of another length", _manifest(_setitem("model.mean", [0.1, 0.2])), r"atlas\.json: model\.mean must be a list of 1"),
    ("name as a number", _manifest(_setitem("model.name", 3)), r"atlas\.json: model\.name must be a text"),
    ("layer name twice", _manifest(lambda m: m["layers"].append(dict(m["layers"][0]))), r"atlas\.json: layers\[1\]\.name must be .* not used"),
    ("layer name of another model", _manifest(_setitem("layers.0.name", "<b>conv</b>")), r"layer '<b>conv</b>'.*not a conv layer of this model"),
    ("examples at an absolute path", _manifest(_setitem("layers.0.examples", "/etc/passwd")), r"atlas\.json: layers\[block1_conv1\]\.examples must be a relative path"),
    ("examples up and out", _manifest(_setitem("layers.0.examples", "../outside.json")), r"layers\[block1_conv1\]\.examples must be a relative path"),
    ("examples through a link out", _link("layers/features.0.json", "outside.json"), r"layers\[block1_conv1\]\.examples must be a file inside the store"),
    ("examples a link to /dev/zero", _link("layers/features.0.json", "/dev/zero"), r"layers\[block1_conv1\]\.examples must be a file inside the store"),
    ("examples a directory", _manifest(_setitem("layers.0.examples", "crops")), r"the atlas file .*crops must be a regular file"),
    ("crops pattern reading attributes", _manifest(_setitem("layers.0.crops", "crops/{unit.__class__}/{unit}.webp")),
     r"atlas\.json: layers\[0\]\.crops must be a path with '\{unit\}' once"),
    ("crops up and out", _manifest(_setitem("layers.0.crops", "../../{unit}.webp")), r"layers\[block1_conv1\]\.crops must be a relative path"),
    ("visualizations without their settings", _manifest(lambda m: m.pop("visualization")), r"atlas\.json: visualization must be a JSON object"),
]
ATLAS_FILES = [
    ("image index negative", _first_example("image", -1), r"features\.0\.json: units\[0\]\[0\]\.image must be an integer from 0 to 5"),
    ("image index past the data", _first_example("image", 6), r"features\.0\.json: units\[0\]\[0\]\.image must be an integer from 0 to 5"),
    ("image index as text", _first_example("image", "0"), r"features\.0\.json: units\[0\]\[0\]\.image must be"),
    ("row past the grid", _first_example("row", 28), r"features\.0\.json: units\[0\]\[0\]\.row must be an integer from 0 to 27"),
    ("column negative", _first_example("column", -1), r"features\.0\.json: units\[0\]\[0\]\.column must be"),
    ("value as text", _first_example("value", "<b>9</b>"), r"features\.0\.json: units\[0\]\[0\]\.value must be a finite number"),
    ("value NaN", lambda f: (f / "layers" / "features.0.json").write_text(
        re.sub(r'"value": [-0-9.e]+', '"value": NaN', (f / "layers" / "features.0.json").read_text(), count=1)), r"features\.0\.json.*standard JSON"),
    ("label a number", _first_example("label", 7), r"features\.0\.json: units\[0\]\[0\]\.label must be a text or null"),
    ("probability 3", _first_example("predicted", ["Sneaker", 3]), r"units\[0\]\[0\]\.predicted\[1\] must be a finite number from 0"),
    ("prediction not a pair", _first_example("predicted", "Sneaker"), r"units\[0\]\[0\]\.predicted must be a \[class name, probability\] pair"),
    ("an example a list", _examples(lambda c: c["units"][0].__setitem__(0, [1, 2])), r"features\.0\.json: units\[0\]\[0\] must be a JSON object"),
    ("too many examples", _examples(lambda c: c["units"][0].extend(c["units"][0])), r"features\.0\.json: units\[0\] must be a list of at most 2"),
    ("a unit missing", _examples(lambda c: c["units"].pop()), r"features\.0\.json: units must be a list of 32 units"),
    ("another layer's file", _examples(lambda c: c.__setitem__("layer", "block2_conv1")), r"features\.0\.json: layer must be 'block1_conv1'"),
    ("400 KB of spaces", _write("layers/features.0.json", lambda: b"{" + b" " * 400_000 + b"}"), r"features\.0\.json is .* bytes; at most"),
    ("crops a PNG", _write("crops/features.0/0.webp", lambda: _picture_bytes((18, 9), "PNG")), r"0\.webp \(layers\[block1_conv1\]\.crops.*must be a WebP"),
    ("crops claiming 16383x16383", _write("crops/features.0/0.webp", lambda: _webp_claiming(16383, 16383)), r"0\.webp \(layers\[block1_conv1\]\.crops"),
    ("crops 4000x300", _write("crops/features.0/0.webp", lambda: _picture_bytes((4000, 300), "WEBP")),
     r"0\.webp \(layers\[block1_conv1\]\.crops.* is 4000x300 pixels; it must be at most 256x128"),
    ("crops 9 wide for 2 crops", _write("crops/features.0/0.webp", lambda: _picture_bytes((9, 9), "WEBP")), r"0\.webp .* 2 crops of equal width"),
    ("crops through a link out", _link("crops/features.0/0.webp", "outside.json"), r"layers\[block1_conv1\]\.crops must be a file inside the store"),
    ("crops truncated", lambda f: (f / "crops/features.0/0.webp").write_bytes((f / "crops/features.0/0.webp").read_bytes()[:40]), r"0\.webp \(layers\[block1_conv1\]\.crops"),
    ("visualization 29x28", _write("visualizations/features.0/0.webp", lambda: _picture_bytes((29, 28), "WEBP")),
     r"0\.webp \(layers\[block1_conv1\]\.visualizations.* must be at most 28x28"),
]
for _label, _edit, _message in ATLAS_MANIFEST + ATLAS_FILES:
    cases("open_atlas", _message, [(_label, _edit)], _open_edited_store)


def _not_json() -> str:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as file:
        file.write("{not json")
    return file.name


# ---------------------------------------------------------------- the Model handle

cases("Model.layer", "layer", BAD_LAYER, lambda r, v: r.fashion.layer(v))
BAD_FILTERS = [
    ("negative", [-1]), ("past the end", [32]), ("huge", [10**9]), ("range past the end", "0-99999"), ("words", "twelve"),
    ("reversed range", "5-2"), ("fraction", [1.5]), ("bool", True), ("bools", [False]), ("dict", {}),
    ("empty list", []), ("NaN", float("nan")), ("script", HOSTILE[0][1]), ("None in a list", [None]), ("text in a list", ["1"]),
]
cases("Model.filters", "filter", BAD_FILTERS, lambda r, v: r.fashion.filters("block1_conv1", v))
cases("Model.preprocess", "image|source", BAD_IMAGE[:12], lambda r, v: r.fashion.preprocess(v))
cases("Model.preprocess", "size", [("zero", (0, 0)), ("negative", (-1, 8)), ("one number", (8,)), ("fraction", (8.5, 8)), ("text", "8x8"),
                                   ("huge", (100_000, 100_000))],
      lambda r, v: r.fashion.preprocess(r.image, size=v))
cases("Model.output_shape", "path", [("unknown", "features.99"), ("number", 3), *HOSTILE[:2]], lambda r, v: r.fashion.output_shape(v))

# ---------------------------------------------------------------- engine

cases("engine.filter_weights", "layer", BAD_LAYER, lambda r, v: engine.filter_weights(r.fashion, v))
cases("engine.filter_weights", "model", [("None", None), ("number", 3), ("unknown name", "nope"), ("a module without convs", nn.Linear(2, 2))],
      lambda r, v: engine.filter_weights(v, 0))
cases("engine.feature_maps", "image|source", BAD_IMAGE, lambda r, v: engine.feature_maps(r.fashion, v, cache=False))
cases("engine.feature_maps", "layer", [*NOT_A_LIST, ("one unknown in a list", [0, "block9_conv1"]), ("numpy fraction", np.float64(1.0)),
                                       ("empty list", [])],
      lambda r, v: engine.feature_maps(r.fashion, r.image, layers=v, cache=False))
cases("engine.feature_maps", "stage", BAD_CHOICE, lambda r, v: engine.feature_maps(r.fashion, r.image, layers=0, stage=v, cache=False))
cases("engine.feature_maps", "model", [("None", None), ("number", 3), ("unknown name", "nope")], lambda r, v: engine.feature_maps(v, r.image))
cases("engine.cam", "method", BAD_CHOICE, lambda r, v: engine.cam(r.fashion, r.image, method=v))
cases("engine.cam", "layer", ANY_MODULE, lambda r, v: engine.cam(r.fashion, r.image, layer=v))
BAD_TARGET = [("past the end", 10), ("huge", 10**9), ("negative", -1), ("fraction", 1.5), ("bool", True), ("NaN", float("nan")),
              ("unknown class", "Helicopter"), ("typo of a class", "Sneakr"), ("list of a bad index", [99]), ("object", object()), *HOSTILE[:3]]
cases("engine.cam", "target", BAD_TARGET, lambda r, v: engine.cam(r.fashion, r.image, target=v))
cases("engine.cam", "image|source", BAD_IMAGE[:12], lambda r, v: engine.cam(r.fashion, v))
cases("engine.cam", "option|smoth|samples", [("a misspelled option", {"smoth": 3}), ("samples zero", {"samples": 0}),
                                             ("samples negative", {"samples": -2}), ("samples fraction", {"samples": 2.5})],
      lambda r, v: engine.cam(r.fashion, r.image, method="smoothgrad", **v))
cases("engine.cam", "raw", [("text", "yes"), ("None", None), ("number", 2)], lambda r, v: engine.cam(r.fashion, r.image, raw=v))
cases("engine.cam_result", "k", CLAMPED, lambda r, v: engine.cam_result(r.fashion, r.image, k=v))
cases("engine.predict", "k", CLAMPED, lambda r, v: engine.predict(r.fashion, r.image, k=v))
cases("engine.predict", "image|source", BAD_IMAGE[:8], lambda r, v: engine.predict(r.fashion, v))
cases("engine.faithfulness", "percentiles", [("over 100", [50, 150]), ("negative", [-10]), ("empty", []), ("text", "50"), ("NaN", [float("nan")]),
                                             ("zero", [0]), ("hundred", [100])],
      lambda r, v: engine.faithfulness(r.fashion, r.image, percentiles=v))
cases("engine.faithfulness", "heatmap", [("wrong shape", torch.zeros(3, 3)), ("NaN", torch.full((28, 28), float("nan"))), ("text", "map"),
                                         ("3-D", torch.zeros(1, 28, 28, 1))],
      lambda r, v: engine.faithfulness(r.fashion, r.image, heatmap=v))
cases("engine.sanity_check", "threshold", [("NaN", float("nan")), ("over 1", 2.0), ("below -1", -1.5), ("text", "0.9"), ("None", None)],
      lambda r, v: engine.sanity_check(r.fashion, r.image, threshold=v))
cases("engine.sanity_check", "steps", [("zero", 0), ("negative", -1), ("fraction", 1.5), ("text", "3"), ("huge", 10**6)],
      lambda r, v: engine.sanity_check(r.fashion, r.image, steps=v))
cases("engine.maximize", "layer", BAD_LAYER, lambda r, v: engine.maximize(r.fashion, v, [0], steps=1, size=16))
cases("engine.maximize", "filter", BAD_FILTERS, lambda r, v: engine.maximize(r.fashion, "block1_conv1", v, steps=1, size=16))
cases("engine.maximize", "steps", BAD_STEPS, lambda r, v: engine.maximize(r.fashion, 0, [0], steps=v, size=16))
cases("engine.maximize", "size", [*(case for case in BAD_COUNT if case[0] != "None"), ("zero height", (0, 16)), ("three numbers", (16, 16, 16)), ("negative pair", (-16, 16)),
                                  ("huge pair", (100_000, 100_000)), ("text pair", ("16", "16"))],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=v))
cases("engine.maximize", "seed", [("text", "zero"), ("fraction", 0.5), ("NaN", float("nan")), ("negative", -1), ("list", [0])],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, seed=v))
cases("engine.maximize", "param", BAD_CHOICE, lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, param=v))
cases("engine.maximize", "objective", [case for case in BAD_CHOICE if case[0] != "None"],  # None: the layer's default objective
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, objective=v))
cases("engine.maximize", "transforms", [("unknown", "nope"), ("number", 3), ("a list of texts", ["jitter"]), ("script", HOSTILE[0][1])],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, transforms=v))
cases("engine.maximize", "precision", BAD_CHOICE, lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, precision=v))
cases("engine.maximize", "lr", [*BAD_REAL, ("zero", 0.0), ("negative", -0.05)],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, lr=v))
cases("engine.maximize", "diversity", [*BAD_REAL, ("negative", -1.0)],
      lambda r, v: engine.maximize(r.fashion, 0, [0, 1], steps=1, size=16, diversity=v))
cases("engine.maximize", "closeness", [*BAD_REAL, ("negative", -1.0)],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, closeness=v))
cases("engine.maximize", "batch_size", [c for c in BAD_COUNT if c[0] != "huge" and c[0] != "None"],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, batch_size=v))
cases("engine.maximize", "preview_every", [c for c in BAD_COUNT if c[0] != "huge"],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, preview_every=v))
cases("engine.maximize", "position", [("negative", (-1, 0)), ("past the map", (100, 100)), ("one number", (1,)), ("text", "center"),
                                      ("fractions", (1.5, 1.5)), ("NaN", (float("nan"), 0))],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, objective="neuron", position=v))
cases("engine.maximize", "start", [("wrong channels", torch.rand(1, 3, 16, 16)), ("2-D", torch.rand(16, 16)), ("NaN", torch.full((1, 1, 16, 16), float("nan"))),
                                   ("text", "start"), ("numpy", np.zeros((1, 1, 16, 16)))],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, start=v))
cases("engine.maximize", "device", [("unknown", "tpu"), ("missing GPU", "cuda:7"), ("number", 3.5)],
      lambda r, v: engine.maximize(r.fashion, 0, [0], steps=1, size=16, device=v))
cases("engine.maximize", "model", [("None", None), ("number", 3), ("unknown name", "nope")], lambda r, v: engine.maximize(v, 0, [0], steps=1, size=16))
DREAM = dict(octaves=1, steps=1, frames=1)
cases("engine.dream", "image|source", BAD_IMAGE, lambda r, v: engine.dream(r.fashion, v, 0, **DREAM))
cases("engine.dream", "layer", BAD_LAYER, lambda r, v: engine.dream(r.fashion, r.image, v, **DREAM))
cases("engine.dream", "filter", [("past the end", 32), ("huge", 10**9), ("negative", -2), ("fraction", 1.5), ("bool", True), ("text", "3"),
                                 ("NaN", float("nan"))],
      lambda r, v: engine.dream(r.fashion, r.image, 0, filter=v, **DREAM))
for _name in ("octaves", "steps", "frames"):
    cases("engine.dream", _name, BAD_STEPS if _name == "steps" else BAD_COUNT, lambda r, v, n=_name: engine.dream(r.fashion, r.image, 0, **{**DREAM, n: v}))
for _name, _extra in (("octave_scale", [("one", 1.0), ("below one", 0.5), ("negative", -1.4)]), ("step_size", [("zero", 0.0), ("negative", -0.01)]),
                      ("smoothing", [("negative", -1.0)]), ("zoom", [("zero", 0.0), ("negative", -1.05)])):
    cases("engine.dream", _name, [*BAD_REAL, *_extra], lambda r, v, n=_name: engine.dream(r.fashion, r.image, 0, **{**DREAM, n: v}))
cases("engine.dream", "jitter", [("negative", -1), ("fraction", 1.5), ("NaN", float("nan")), ("text", "3"), ("huge", 10**9)],
      lambda r, v: engine.dream(r.fashion, r.image, 0, jitter=v, **DREAM))
cases("engine.dream", "seed", [("text", "zero"), ("fraction", 0.5), ("negative", -1)], lambda r, v: engine.dream(r.fashion, r.image, 0, seed=v, **DREAM))
cases("engine.dream", "precision", BAD_CHOICE[:6], lambda r, v: engine.dream(r.fashion, r.image, 0, precision=v, **DREAM))
BAD_DATASET = [("text", "not a dataset"), ("number", 3), ("None", None), ("empty tensor", torch.zeros(0, 1, 28, 28)), ("empty list", []),
               ("two channels", torch.rand(4, 2, 28, 28)), ("3-D tensor", torch.rand(4, 28, 28)), ("NaN images", torch.full((2, 1, 28, 28), float("nan"))),
               ("list of bad images", [b"not an image", b"x"]), ("dict", {"a": 1})]
cases("engine.dataset_examples", "dataset|image", BAD_DATASET, lambda r, v: engine.dataset_examples(r.fashion, v, k=2, cache=False))
cases("engine.dataset_examples", "k", CLAMPED, lambda r, v: engine.dataset_examples(r.fashion, torch.rand(4, 1, 28, 28), k=v, cache=False))
cases("engine.dataset_examples", "batch_size", CLAMPED,
      lambda r, v: engine.dataset_examples(r.fashion, torch.rand(4, 1, 28, 28), k=2, batch_size=v, cache=False))
cases("engine.dataset_examples", "layer", BAD_LAYER[:8], lambda r, v: engine.dataset_examples(r.fashion, torch.rand(4, 1, 28, 28), layers=v, k=2, cache=False))
cases("engine.convolution_at", "filter", [("past the end", 32), ("negative", -1), ("fraction", 1.5), ("bool", True), ("text", "0"), ("huge", 10**9)],
      lambda r, v: engine.convolution_at(r.fashion, r.image, filter=v))
cases("engine.convolution_at", "position", [("negative", (-1, 0)), ("past the map", (28, 0)), ("huge", (10**9, 0)), ("one number", (1,)),
                                            ("three numbers", (1, 1, 1)), ("fractions", (0.5, 0)), ("text", "0,0"), ("None", None), ("bools", (True, False))],
      lambda r, v: engine.convolution_at(r.fashion, r.image, position=v))
cases("engine.convolution_at", "kernel", [("too large", torch.zeros(50, 50)), ("NaN", torch.full((3, 3), float("nan"))), ("ragged", [[1, 2], [3]]),
                                          ("text", "edge"), ("1-D", [1, 2, 3]), ("infinite", [[float("inf")] * 3] * 3)],
      lambda r, v: engine.convolution_at(r.fashion, r.image, kernel=v))
cases("engine.convolution_at", "pool", [("zero", 0), ("negative", -2), ("fraction", 1.5), ("text", "2"), ("huge", 10**9)],
      lambda r, v: engine.convolution_at(r.fashion, r.image, pool=v))
cases("engine.convolution_at", "layer", BAD_LAYER[:8], lambda r, v: engine.convolution_at(r.fashion, r.image, layer=v))
cases("engine.layer_input", "layer", BAD_LAYER[:8], lambda r, v: engine.layer_input(r.fashion, r.image, layer=v))
cases("engine.layer_input", "image|source", BAD_IMAGE[:8], lambda r, v: engine.layer_input(r.fashion, v))
cases("engine.receptive_fields", "max_scale", [("zero", 0), ("negative", -1), ("fraction", 1.5), ("text", "4"), ("huge", 10**6)],
      lambda r, v: engine.receptive_fields(r.fashion, layers=[0], max_scale=v))
cases("engine.receptive_fields", "layer", BAD_LAYER[:8], lambda r, v: engine.receptive_fields(r.fashion, layers=v))
cases("engine.sort_channels", "by", BAD_CHOICE, lambda r, v: engine.sort_channels(r.maps, by=v))
cases("engine.sort_channels", "maps", [("1-D", torch.zeros(4)), ("numpy", np.zeros((2, 3, 3))), ("text", "maps"), ("empty", torch.zeros(0, 3, 3))],
      lambda r, v: engine.sort_channels(v))
cases("engine.channel_stats", "maps", [("1-D", torch.zeros(4)), ("numpy", np.zeros((2, 3, 3))), ("text", "maps"), ("None", None)],
      lambda r, v: engine.channel_stats(v))
cases("engine.copy_weights", "model", [("None", None), ("number", 3), ("text", "nope")], lambda r, v: engine.copy_weights(v))

# ---------------------------------------------------------------- widget constructors

CONSTRUCTORS = {
    "FilterWeights": lambda r, **kw: cw.FilterWeights(r.fashion, **kw),
    "FeatureMaps": lambda r, **kw: cw.FeatureMaps(r.fashion, kw.pop("image", "sneaker"), **kw),
    "ActivationMaximization": lambda r, **kw: cw.ActivationMaximization(r.fashion, **{"steps": 1, "size": 16, "filters": "0", **kw}),
    "DeepDream": lambda r, **kw: cw.DeepDream(r.fashion, kw.pop("image", "sneaker"), **{"steps": 1, "octaves": 1, "frames": 1, **kw}),
    "GradCAM": lambda r, **kw: cw.GradCAM(r.fashion, kw.pop("image", "sneaker"), **kw),
    "ConvolutionExplainer": lambda r, **kw: cw.ConvolutionExplainer(r.fashion, kw.pop("image", "sneaker"), **kw),
    "DatasetExamples": lambda r, **kw: cw.DatasetExamples(r.fashion, kw.pop("dataset", torch.rand(4, 1, 28, 28)), **{"k": 2, **kw}),
    "Explorer": lambda r, **kw: cw.Explorer(r.fashion, kw.pop("image", "sneaker"), **{"dataset": None, **kw}),
    "TrainingMonitor": lambda r, **kw: cw.TrainingMonitor(r.user, kw.pop("image", "cat"), **kw),
}
for _widget, _make in CONSTRUCTORS.items():
    cases(f"{_widget}()", "model", [("None", None), ("number", 3), ("unknown name", "nope"), ("a module without convs", nn.Linear(2, 2))],
          lambda r, v, w=_widget: getattr(cw, w)(v, *(() if w in ("FilterWeights", "ActivationMaximization") else
                                                      (torch.rand(4, 1, 28, 28),) if w == "DatasetExamples" else ("sneaker",))))
    for _keyword in ("layr", "colour", "_model"):
        cases(f"{_widget}()", _keyword, [("a misspelled keyword", {_keyword: 0})], lambda r, v, m=_make: m(r, **v))
    if _widget not in ("FilterWeights", "ActivationMaximization", "DatasetExamples"):
        cases(f"{_widget}()", "image|source", BAD_IMAGE[:10], lambda r, v, m=_make: m(r, image=v))
    if _widget != "TrainingMonitor":
        cases(f"{_widget}()", "layer", BAD_LAYER[:8], lambda r, v, m=_make: m(r, layer=v))
cases("DatasetExamples()", "dataset|image", BAD_DATASET, lambda r, v: CONSTRUCTORS["DatasetExamples"](r, dataset=v))
cases("DatasetExamples()", "k", CLAMPED[:7], lambda r, v: CONSTRUCTORS["DatasetExamples"](r, k=v))
cases("GradCAM()", "method", TRAIT_CHOICES, lambda r, v: CONSTRUCTORS["GradCAM"](r, method=v))
cases("GradCAM()", "target", BAD_TARGET, lambda r, v: CONSTRUCTORS["GradCAM"](r, target=v))
cases("ActivationMaximization()", "filter", BAD_FILTERS, lambda r, v: CONSTRUCTORS["ActivationMaximization"](r, filters=v))
cases("ActivationMaximization()", "steps", [case for case in BAD_COUNT if case[0] != "None"],  # None: the default steps
      lambda r, v: CONSTRUCTORS["ActivationMaximization"](r, steps=v))
cases("ActivationMaximization()", "size", [case for case in BAD_COUNT if case[0] != "None"],  # None: the default size
      lambda r, v: CONSTRUCTORS["ActivationMaximization"](r, size=v))
cases("ConvolutionExplainer()", "filter", [("past the end", 32), ("negative", -1), ("fraction", 1.5), ("text", "0")],
      lambda r, v: CONSTRUCTORS["ConvolutionExplainer"](r, filter=v))
cases("ConvolutionExplainer()", "position", [("negative", (-1, 0)), ("past the map", (28, 0)), ("text", "0,0")],
      lambda r, v: CONSTRUCTORS["ConvolutionExplainer"](r, position=v))
cases("ConvolutionExplainer()", "kernel", [("too large", [[1] * 50] * 50), ("NaN", [[float("nan")] * 3] * 3), ("text", "edge")],
      lambda r, v: CONSTRUCTORS["ConvolutionExplainer"](r, kernel=v))
cases("TrainingMonitor()", "every", [("zero", 0), ("negative", -1), ("fraction", 1.5), ("unknown text", "sometimes"), ("None", None)],
      lambda r, v: CONSTRUCTORS["TrainingMonitor"](r, every=v))
for _widget, _traits in {
    "FeatureMaps": ("colormap", "normalization", "sort_by", "stage"),
    "FilterWeights": ("colormap", "normalization", "view"),
    "GradCAM": ("colormap",),
    "ActivationMaximization": ("preset",),
}.items():
    for _trait in _traits:
        cases(f"{_widget}()", _trait, BAD_CHOICE[:6], lambda r, v, m=CONSTRUCTORS[_widget], t=_trait: m(r, **{t: v}))

# ---------------------------------------------------------------- widget traits, set as a frontend would

TRAITS = {
    "FilterWeights": {"layer": BAD_LAYER, "filter_index": "index", "colormap": BAD_CHOICE, "normalization": BAD_CHOICE, "view": BAD_CHOICE},
    "FeatureMaps": {"layer": BAD_LAYER, "filter_index": "index", "colormap": BAD_CHOICE, "normalization": BAD_CHOICE, "sort_by": BAD_CHOICE,
                    "stage": BAD_CHOICE, "sample": "sample"},
    "ActivationMaximization": {"layer": BAD_LAYER, "filter_index": "index", "filters": "filters", "steps": "count", "size": "count",
                               "preset": BAD_CHOICE, "seed": "seed"},
    "DeepDream": {"layer": BAD_LAYER, "filter": "index", "octaves": "count", "steps": "count", "frames": "count", "octave_scale": "real",
                  "step_size": "real", "smoothing": "real", "zoom": "real", "jitter": "seed", "seed": "seed", "sample": "sample",
                  "frame_index": "index"},
    "GradCAM": {"layer": ANY_MODULE, "method": BAD_CHOICE, "colormap": BAD_CHOICE, "opacity": "real", "target_index": "index", "compare": "compare",
                "sample": "sample"},
    "ConvolutionExplainer": {"filter_index": "index", "position": "position", "kernel": "kernel", "sample": "sample", "layer": BAD_LAYER[:4]},
    "TrainingMonitor": {"index": "index"},
    "Explorer": {"layer": BAD_LAYER, "filter_index": "index"},
    "DatasetExamples": {"layer": BAD_LAYER, "filter_index": "index"},
}
TRAIT_VALUES = {
    "sample": [case for case in BAD_CHOICE if case[0] not in ("empty text", "bytes")],  # "": the person's own image
    "compare": [case for case in BAD_CHOICE if case[0] not in ("empty text", "spaces", "bytes")],  # "": no comparison
    "index": [("huge", 10**9), ("negative", -5), ("fraction", 1.5), ("text", "3"), ("None", None), ("NaN", float("nan"))],
    "count": [("zero", 0), ("negative", -1), ("huge", 10**9), ("fraction", 1.5), ("text", "3"), ("None", None)],
    "seed": [("negative", -1), ("fraction", 0.5), ("text", "0"), ("None", None)],
    "real": [("NaN", float("nan")), ("infinity", float("inf")), ("negative", -1.0), ("text", "0.5"), ("None", None), ("huge", 1e300)],
    "filters": [(label, value) for label, value in BAD_FILTERS if isinstance(value, str)] + [("list", [0, 1]), ("number", 3), ("None", None)],
    "position": [("negative", [-1, 0]), ("past the map", [28, 0]), ("one number", [1]), ("texts", ["a", "b"]), ("fractions", [0.5, 0.5])],
    "kernel": [("too large", [[1] * 50] * 50), ("NaN", [[float("nan")] * 3] * 3), ("texts", [["a"] * 3] * 3), ("ragged", [[1, 2, 3], [1]])],
}


def _set(view_name: str, trait: str):
    def call(r, value):
        view = r.widget(view_name)
        setattr(view, trait, value)
        settle(view)
        if getattr(view, "error", ""):  # accepted, and then the view failed: not clear at the moment of setting
            raise AssertionError(f"accepted, then the view showed an error: {view.error}")
    return call


for _widget, _traits in TRAITS.items():
    for _trait, _values in _traits.items():
        values = TRAIT_VALUES[_values] if isinstance(_values, str) else [c for c in _values if c[0] != "bytes"]
        for _label, _value in values:
            CASES.append(Case(f"{_widget}.{_trait}", {"filter_index": "filter", "compare": "compar"}.get(_trait, _trait), _label,
                              functools.partial(lambda r, v, c: c(r, v), v=_value, c=_set(_widget, _trait)),
                              widget=functools.partial(lambda r, w: r.widget(w), w=_widget)))


# ---------------------------------------------------------------- the tests

RESOURCES = Resources()


def _ids(case: Case) -> str:
    return case.id


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_bad_input_is_refused_clearly_and_changes_nothing(case: Case):
    r = RESOURCES
    view = case.widget(r) if case.widget else None
    before_traits = traits_of(view) if view is not None else None
    before_models = [(module, snapshot(module)) for module in r.models]
    try:
        with pytest.raises(Exception) as raised:
            case.call(r)
    finally:
        if view is not None:
            settle(view)
            after = traits_of(view)
            changed = sorted(name for name in before_traits if after.get(name) != before_traits[name] and not _both_nan(after.get(name), before_traits[name]))
            for name in changed:  # put it back for the next case, then report
                with view.hold_trait_notifications():
                    view.set_trait(name, before_traits[name])
        for module, before in before_models:
            assert_unchanged(module, before)
    error = raised.value
    assert isinstance(error, case.error), f"{type(error).__name__}: {error}"
    text = str(error)
    assert re.search(case.parameter, text, re.IGNORECASE), f"the message does not name {case.parameter!r}: {text}"
    assert VALID.search(text), f"the message does not say what is valid: {text}"
    if view is not None:
        assert changed == [], f"traits changed: {changed}"


def _both_nan(a, b) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def test_the_sweep_is_large_and_reports_its_counts(capsys):
    counts = collections.Counter(case.function for case in CASES)
    with capsys.disabled():
        print(f"\nbad-input sweep: {len(CASES)} cases over {len(counts)} functions, constructors and traits")
        for function, count in sorted(counts.items()):
            print(f"  {function:40s} {count}")
    assert len(CASES) >= 500
    assert len({case.id for case in CASES}) == len(CASES), "every case has its own id"
    widgets = {function.split(".")[0].rstrip("()") for function in counts if function[0].isupper() and not function.startswith("Model")}
    assert set(cw.__all__) >= widgets and widgets >= {name for name in cw._WIDGETS}


def survey() -> None:
    """Run every case and print the ones that fail, grouped (python tests/test_bad_input_sweep.py)."""
    import sys
    import traceback

    import signal
    import time

    torch.set_num_threads(1)

    def alarm(*_):
        raise TimeoutError("took more than 20 s")

    signal.signal(signal.SIGALRM, alarm)
    failures = collections.defaultdict(list)
    slow = []
    only = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-v" else ""
    for case in CASES:
        if only not in case.id:
            continue
        started = time.perf_counter()
        signal.alarm(20)
        try:
            test_bad_input_is_refused_clearly_and_changes_nothing(case)
        except BaseException as error:  # survey everything
            if isinstance(error, KeyboardInterrupt):
                raise
            kind = "accepted silently" if "DID NOT RAISE" in str(error) else type(error).__name__
            failures[case.function].append(f"{case.id}: {kind}: {str(error)[:300]}")
            if "-v" in sys.argv:
                traceback.print_exc()
        finally:
            signal.alarm(0)
        if time.perf_counter() - started > 1:
            slow.append(f"{case.id}: {time.perf_counter() - started:.1f} s")
    total = sum(len(v) for v in failures.values())
    print(f"{total} of {len(CASES)} cases fail; slow: {slow}")
    for function, lines in sorted(failures.items()):
        print(f"== {function}")
        for line in lines:
            print("  ", line.replace("\n", " "))


if __name__ == "__main__":
    survey()
