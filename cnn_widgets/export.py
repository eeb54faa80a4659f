"""Widgets in pages without Jupyter: a self-contained HTML snapshot of widgets, and
a notebook exported to HTML with its widgets shown as they were last.

Both embed each widget's saved state (its traits, pictures included), its
frontend module and its stylesheet in the page, and show it with the same
JavaScript as the notebook, on a model that holds that state
(``js/static_page.js``, built like the widgets' modules: :mod:`cnn_widgets.frontend`).
Nothing is fetched when the page opens, so it works offline and from ``file://``.
Controls that need Python are disabled; the DeepDream frame player still plays.
An Explorer becomes one section per tab. Other widgets appear as the PNG in their
display data, which the widgets keep current (:mod:`cnn_widgets.widgets.static`).

ipywidgets' own ``embed_minimal_html`` and nbconvert's widget export also work
with these widgets' state, but load their renderer from a CDN when the page is
opened; use these functions for pages that must work offline.
"""
from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from pathlib import Path

from .frontend import bundled

STATIC_MIME = "application/vnd.cnn-widgets.static+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }}
.cw-static {{ margin: 0 0 28px 0; }}
.cw-static-note {{ font-size: 12px; color: #656d76; margin: 0 0 6px 0; }}
.cw-static-heading {{ font-size: 15px; margin: 22px 0 6px 0; }}
</style>
</head>
<body>
<h1 style="font-size: 18px">{title}</h1>
{body}
</body>
</html>
"""


def save_html(path, *widgets, title: str = "cnn-widgets snapshot") -> Path:
    """Write a self-contained HTML page showing ``widgets`` as they are now.

    The page needs no Python, no Jupyter and no network: course pages, e-mail
    attachments, a static site. Returns the path written.

    >>> import cnn_widgets as cw, tempfile, pathlib
    >>> maps = cw.FeatureMaps(cw.load_model("fashion-cnn"), "sneaker", layer="block2_conv1")
    >>> page = cw.save_html(pathlib.Path(tempfile.mkdtemp()) / "maps.html", maps)
    >>> "block2_conv1" in page.read_text()
    True
    """
    if not widgets:
        raise ValueError("save_html needs at least one widget, e.g. save_html('page.html', maps)")
    if not isinstance(title, str):
        raise TypeError(f"title must be a text, got {type(title).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or Path), got {type(path).__name__}")
    parts = [_widget_html(widget, first=index == 0) for index, widget in enumerate(widgets)]
    page = _PAGE.format(title=html.escape(title), body="\n".join(parts))
    return _write_atomically(Path(path), page)


def export_notebook_html(notebook, path=None) -> Path:
    """Convert a saved notebook to an HTML page that shows its widgets offline.

    Widgets with saved state (a notebook run by nbclient, ``jupyter nbconvert
    --execute``, papermill, or saved from JupyterLab with "Save Widget State
    Automatically") appear as live-looking snapshots; other widget outputs fall
    back to their PNG. ``path`` defaults to the notebook's name with ``.html``.
    Needs nbconvert (installed with JupyterLab). The page keeps nbconvert's own
    MathJax and require.js links, which only matter for LaTeX in Markdown cells.

    >>> import cnn_widgets as cw, nbformat, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lesson")]), folder / "lesson.ipynb")
    >>> cw.export_notebook_html(folder / "lesson.ipynb").name
    'lesson.html'
    """
    if not isinstance(notebook, (str, os.PathLike)):
        raise TypeError(f"notebook must be the path of a .ipynb file, got {type(notebook).__name__}")
    source = Path(notebook)
    if source.suffix != ".ipynb" or not source.is_file():
        raise FileNotFoundError(f"notebook {source} is not a notebook file; pass the path of an existing .ipynb file")
    target = Path(path) if path is not None else source.with_suffix(".html")
    if target.resolve() == source.resolve():
        raise ValueError(f"refusing to overwrite the notebook {source} with HTML")
    import nbformat  # nbconvert takes seconds to import: only once the arguments are known to be good

    try:
        from nbconvert import HTMLExporter
    except ImportError as error:  # pragma: no cover - nbconvert comes with jupyterlab
        raise ImportError("export_notebook_html needs nbconvert: pip install nbconvert") from error
    try:
        nb = nbformat.read(source, as_version=4)
    except Exception as error:  # nbformat's errors vary by version: say what was expected
        raise ValueError(f"notebook {source} could not be read ({error}); pass a .ipynb file in Jupyter's JSON format") from None
    embed_static_widgets(nb)
    body, _ = HTMLExporter().from_notebook_node(nb, resources={"metadata": {"name": source.stem}})
    return _write_atomically(target, body)


def embed_static_widgets(nb) -> int:
    """Rewrite a notebook (an ``nbformat`` node, in place) so an HTML export shows its
    widgets without a kernel or a CDN; returns how many outputs were rewritten.

    An output whose widget is an anywidget with saved state becomes an offline
    snapshot (``text/html``), and so does a box or tab of them (an Explorer: one
    section per tab); any other widget output that has a PNG keeps only the PNG. The saved widget state is dropped when no widget output still needs it,
    so the page loads no renderer from a CDN.
    """
    states = nb.metadata.get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    rewritten, first = 0, True
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if VIEW_MIME not in data:
                continue
            saved = states.get(data[VIEW_MIME].get("model_id"))
            page = None if saved is None else _saved_html(saved, states, first, data.get("image/png"))
            if page and 'class="cw-static"' in page:  # it holds at least one anywidget
                data["text/html"] = page
                first = False
            elif "image/png" not in data:
                continue
            del data[VIEW_MIME]
            rewritten += 1
    still_needed = any(VIEW_MIME in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", []))
    if not still_needed:
        nb.metadata.pop("widgets", None)
    return rewritten


# -- the pieces ----------------------------------------------------------------------


def _widget_html(widget, first: bool) -> str:
    parts = getattr(widget, "_static_parts", None)
    if parts is not None:  # a composite (the Explorer): each of its views in turn
        sections = []
        for index, (title, part) in enumerate(parts()):
            sections.append(f'<h2 class="cw-static-heading">{html.escape(title)}</h2>\n{_widget_html(part, first=first and index == 0)}')
        return "\n".join(sections)
    if hasattr(widget, "_esm") and hasattr(widget, "get_state"):
        spec = {"esm": widget._esm, "css": getattr(widget, "_css", "") or "", "state": _encode_bytes(widget.get_state())}
        png = _picture_base64(widget)
        return _fragment(spec, png, first=first)
    png = _picture_base64(widget)
    if png is None:
        raise TypeError(
            f"{type(widget).__name__} cannot be saved as HTML: pass cnn-widgets widgets "
            "(FilterWeights, FeatureMaps, ActivationMaximization, DeepDream, GradCAM, Explorer, DatasetExamples)"
        )
    name = html.escape(type(widget).__name__)
    return f'<div class="cw-static-picture"><img alt="{name}" src="data:image/png;base64,{png}"></div>'


def _picture_base64(widget) -> str | None:
    picture = getattr(widget, "picture", None)
    if picture is None:
        return None
    from . import render

    shown = picture()
    return None if shown is None else base64.b64encode(render.encode_png(shown)).decode("ascii")


def _fragment(spec: dict, png: str | None, first: bool) -> str:
    """One widget: its saved state, a PNG shown until (or unless) the script runs."""
    payload = script_json(spec)
    fallback = f'<img class="cw-static-fallback" alt="saved widget" src="data:image/png;base64,{html.escape(png)}">' if png else ""
    loader = f"<script>\n{bundled('static_page.js').read_text()}\n</script>" if first else "<script>window.cnnWidgetsStatic && window.cnnWidgetsStatic.mountAll()</script>"
    note = '<p class="cw-static-note">A saved view: run the notebook to change it (the controls need Python).</p>'
    return (
        f'<div class="cw-static">{note}<div class="cw-static-view"></div>{fallback}'
        f'<script type="{STATIC_MIME}">{payload}</script></div>\n{loader}'
    )


def script_json(value) -> str:
    """``value`` as JSON that is safe inside an HTML ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\\u003c``-style escapes (so no ``</script>`` or
    ``<!--`` in a class name can end or change the element), and so do U+2028/U+2029.
    The result is still JSON that parses to ``value``.

    >>> script_json({"name": "</script><!--"})
    '{"name":"\\\\u003c/script\\\\u003e\\\\u003c!--"}'
    """
    text = json.dumps(value, separators=(",", ":"))
    for character, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(character, escape)
    return text


def _saved_html(saved: dict, states: dict, first: bool, png: str | None = None) -> str:
    """HTML for a widget from ipywidgets' saved state: an anywidget as an offline
    snapshot; the Explorer, a box or a tab holding anywidgets as its parts in turn, with
    the tabs' titles as headings, HTML widgets as their HTML and images as images;
    controls give nothing. ``png``: what an anywidget shows until its script has run."""
    state = saved.get("state", {})
    if "_esm" in state and isinstance(state.get("views"), list):  # the Explorer: its views in turn, as a tab holding them
        strip = " · ".join(f"<b>{html.escape(layer['label'])}</b>" if layer["name"] == state.get("layer") else html.escape(layer["label"])
                           for layer in state.get("layer_strip", []))
        tabs = {"model_name": "TabModel", "state": {"children": state["views"], "titles": state.get("titles", [])}}
        parts = [f'<div class="cw-static-html">{html.escape(state.get("heading", ""))}</div>', strip, _saved_html(tabs, states, first)]
        return "\n".join(part for part in parts if part)
    if "_esm" in state:
        return _fragment(_spec_from_saved(saved), png, first=first)
    name = saved.get("model_name", "")
    if name == "HTMLModel":
        return f'<div class="cw-static-html">{state.get("value", "")}</div>' if state.get("value") else ""
    if name == "ImageModel":
        buffer = next((b for b in saved.get("buffers", []) if b["path"] == ["value"]), None)
        if buffer is None or buffer.get("encoding", "base64") != "base64":
            return ""
        return f'<img class="cw-static-image" alt="" src="data:image/{html.escape(str(state.get("format", "png")))};base64,{html.escape(str(buffer["data"]))}">'
    if name == "ToggleButtonsModel":  # the Explorer's layer strip, as text with the choice in bold
        labels = [html.escape(label) for label in state.get("_options_labels", [])]
        chosen = state.get("index")
        return " · ".join(f"<b>{label}</b>" if i == chosen else label for i, label in enumerate(labels))
    children = state.get("children")
    if not isinstance(children, list):
        return ""  # a control (a slider, toggle buttons): nothing to show without Python
    titles = (state.get("titles") or []) if name in ("TabModel", "AccordionModel") else []
    parts = []
    for index, reference in enumerate(children):
        child = states.get(str(reference).removeprefix("IPY_MODEL_"))
        if child is None:
            continue
        part = _saved_html(child, states, first and not any('class="cw-static"' in p for p in parts))
        if not part:
            continue
        title = titles[index] if index < len(titles) and titles[index] else None
        parts.append((f'<h3 class="cw-static-heading">{html.escape(title)}</h3>\n' if title else "") + part)
    return "\n".join(parts)


def _spec_from_saved(saved: dict) -> dict:
    """A widget's frontend spec from ipywidgets' saved state (buffers put back in place)."""
    state = json.loads(json.dumps(saved["state"]))
    for buffer in saved.get("buffers", []):
        data = buffer["data"]
        if buffer.get("encoding") == "hex":
            data = base64.b64encode(bytes.fromhex(data)).decode("ascii")
        target = state
        *parents, last = buffer["path"]
        for key in parents:
            target = target[key]
        target[last] = {"$bytes": data}
    return {"esm": state.pop("_esm"), "css": state.pop("_css", "") or "", "state": state}


def _encode_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {key: _encode_bytes(item) for key, item in value.items() if key not in ("_esm", "_css")}
    if isinstance(value, (list, tuple)):
        return [_encode_bytes(item) for item in value]
    return value


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so a failure never leaves half a file behind."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name such as {path / 'page.html'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write to path {str(path)!r}: the folder {str(path.parent)!r} does not exist; pass a path in an existing folder")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
