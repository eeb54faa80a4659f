"""Where the built frontend is: each widget's ES module and stylesheet, and the script
that shows saved widgets in offline HTML pages.

esbuild builds them from the sources in ``js/`` (real ``import``/``export``, one entry
module per widget) into ``cnn_widgets/bundle/``: ``npm run build``, which
``scripts/setup.sh`` runs (``scripts/build_frontend.mjs``). Wheels and sdists ship the
built files, so only development needs Node.js. The widgets' ``_esm`` and ``_css`` are
these paths, which is what lets anywidget reload them live (``ANYWIDGET_HMR=1``, README).

A leaf module: the widgets and the HTML export both import it, and it imports nothing
from the package.
"""
from __future__ import annotations

from pathlib import Path

BUNDLE = Path(__file__).resolve().parent / "bundle"


def bundled(filename: str) -> Path:
    """The path of a built frontend file, such as ``"gradcam.js"`` or ``"gradcam.css"``.

    >>> from cnn_widgets.frontend import bundled
    >>> module = bundled("feature_maps.js")
    >>> module.name, "export {" in module.read_text()
    ('feature_maps.js', True)
    """
    path = BUNDLE / filename
    if path.is_file():
        return path
    built = sorted(file.name for file in BUNDLE.glob("*.*")) if BUNDLE.is_dir() else []
    if not built:
        raise FileNotFoundError(
            f"the cnn-widgets frontend is not built ({BUNDLE} has no files): in the repository, run "
            "`bash scripts/setup.sh`, or `npm ci && npm run build` (needs Node.js 20 or newer)"
        )
    raise ValueError(f"filename must be one of the built frontend files {built}, got {filename!r}")
