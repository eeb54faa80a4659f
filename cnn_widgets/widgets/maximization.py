"""ActivationMaximization: what input makes each filter (or each class) fire, optimized live.

Press Run and the chosen filters are optimized together in a background
thread; the grid sharpens as previews arrive, Stop keeps what is there, and
every finished image is cached per (layer, filter, settings), so coming back
to a layer or a filter is instant. Moving to a filter that has no image yet
(arrow keys, slider, a click, another layer) optimizes that one filter.

The cost is shown before it hurts: before a run the status line estimates its
time from a few real steps timed when the estimate is first needed (then from the
steps a run measured), says that basis ("measured: 0.12 s per step"), and what twice
the steps or the size would cost; during a run it says how long is left. The defaults are chosen per model and device so that a first
Run takes about ``FIRST_RUN_S`` seconds.
"""
from __future__ import annotations

import math
import time

import numpy as np
import traitlets

from .. import render
from .._choices import check_int
from .._bounded import BoundedCache
from ..engine.activations import weights_version
from ..engine.optvis import MAX_SIDE, MAX_STEPS, QUALITY_PRESETS, default_objective, maximize, middle_unit_window
from ..engine.optvis import cost
from ..models import as_model
from ..models.layers import parse_filters
from ..frontend import bundled
from ..render.convolution import text_band
from .tile_viewer import ENLARGED, TileViewer, enlarge, fit_tiles
from .worker import RunControls

RESULTS_BYTES = 64_000_000  # optimized images kept per widget (a 128 px image: 49 kB)
PLACEHOLDER = 200  # light gray for filters not optimized yet
FRAME_GRAY = 128  # the frame around a first-layer filter's enlarged pixels
FIRST_RUN_S = 30  # the defaults aim for a first Run of at most about this long
LONG_RUN_S = 60  # a run expected to take longer says so while it runs
STATUS_EVERY_S = 0.1  # a run's progress and status reach the view at most this often
PREVIEW_EVERY_S = 0.25  # and its images are drawn at most this often (and at the end)
# Defaults tried in order for models with large inputs: (size, steps, filters); the first whose
# estimate fits FIRST_RUN_S wins (the last one otherwise). Small inputs run at their own size.
DEFAULT_CANDIDATES = ((128, 128, 16), (96, 96, 16), (64, 64, 16), (64, 64, 8), (64, 48, 8), (48, 32, 8))
OBJECTIVES = ("channel", "class")
MAX_VARIATIONS = 8
DIVERSITY_SHARE = 1.0  # the diversity penalty's weight, in units of the activation the unit's own image reached

# Seconds per step measured by runs in this process, per (model, layer or "class", size, images,
# preset): estimates use them before the short timing of engine.optvis.cost.step_seconds.
_measured: dict[tuple, float] = {}


def _duration(seconds: float) -> str:
    """'about 4 s', 'about 2 min', 'about 1.5 h'."""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


class ActivationMaximization(TileViewer, RunControls):
    """Images that maximize each filter of a layer (or each class of the output), computed in the background.

    ``filters``: which filters (or classes) the grid shows, as text (``"0-15"``, ``"3, 7, 12"``);
    ``objective``: ``"channel"`` (a filter's mean activation, the default) or ``"class"`` (the
    output's score for a class, one image per class with its name). Left out, a layer whose
    conv reads the input (the first layer) maximizes the middle unit of each filter's map
    instead (:func:`~cnn_widgets.engine.optvis.default_objective` says why), and the view
    shows the few pixels that unit sees, enlarged. ``variations``: how many
    different images of the selected filter the enlarged view shows (more than 1 adds a
    diversity penalty between them). ``filters``, ``steps`` and ``size`` left out are chosen
    for the model and device so that a first Run takes about 30 s at most.

    >>> import cnn_widgets as cw
    >>> widget = cw.ActivationMaximization(cw.load_model("fashion-cnn"), layer="block2_conv1", filters="0-3", steps=8)
    >>> widget.run(wait=True)
    >>> widget.status.startswith("done"), len(widget.tile_order)
    (True, 4)
    """

    _esm = bundled("maximization.js")
    _css = bundled("maximization.css")

    filters = traitlets.Unicode("0-15").tag(sync=True)
    steps = traitlets.Int(128).tag(sync=True)
    size = traitlets.Int(0).tag(sync=True)
    preset = traitlets.Unicode("high").tag(sync=True)
    preset_options = traitlets.List(list(QUALITY_PRESETS)).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    objective = traitlets.Unicode("channel").tag(sync=True)
    objective_options = traitlets.List(list(OBJECTIVES)).tag(sync=True)
    variations = traitlets.Int(1).tag(sync=True)
    class_names = traitlets.List([]).tag(sync=True)  # the slider names classes with them in class mode
    normalization_options = traitlets.List([]).tag(sync=True)  # images are shown as they are
    colormap_options = traitlets.List([]).tag(sync=True)

    _GRID_TRAITS = ("layer", "objective", "filters", "steps", "size", "preset", "seed")

    def __init__(self, model, layer=None, filters: str | None = None, steps: int | None = None, size: int | None = None,
                 objective: str | None = None, **kwargs) -> None:
        self._results = BoundedCache(max_bytes=RESULTS_BYTES)  # finished images, per _key
        self._previews = BoundedCache(max_bytes=RESULTS_BYTES)  # images of a run in progress
        self._reached: dict[tuple, float] = {}  # the objective each finished image reached
        self._version = 0
        self._history: list[tuple[list[int], np.ndarray]] = []  # the grid's filters and tiles at each preview of the last run (see _keep_frame)
        self._stopped_at: dict[tuple, int] = {}  # filters whose run was stopped: the last step reached
        self._computing: set[tuple] = set()  # keys the running job optimizes
        self._grid_run = False  # the running job was started by Run (not by moving to a filter)
        self._interrupted = ""  # what a run cut short by a newer request had reached
        self._requested: tuple | None = None  # what the last move to a filter asked for
        self._draw_seconds = 0.0  # how long the last fresh drawing of the grid took: a run redraws it at each preview
        model = as_model(model)
        self._objective_given = objective is not None  # else the first layer uses its middle unit
        objective = "channel" if objective is None else objective
        if objective not in OBJECTIVES:
            raise traitlets.TraitError(f"objective {objective!r} is not one of the valid choices: {', '.join(OBJECTIVES)}")
        info = model.layer(layer if layer is not None else 0)
        if objective == "class" and not model.classes:
            raise traitlets.TraitError(f"objective 'class' needs a model with a classifier; {model.name} returns no class scores")
        count = len(model.classes) if objective == "class" else info.out_channels
        size, steps, images = self._defaults(model, info.name, objective, size, steps, filters, count)
        if filters is None:
            filters = f"0-{images - 1}"
        super().__init__(model, layer=layer, filters=str(filters), steps=steps, size=size, objective=objective, **kwargs)
        self.filter_count = self.unit_count()  # the classes, for objective="class"
        self.class_names = list(model.classes or []) if objective == "class" else []
        self.observe(self._on_variations, names=["variations"])
        self.observe(self._on_objective_chosen, names=["objective"])
        # Drawn once more, timed: a run redraws the grid at each preview, and the first drawing
        # also paid for one-off start-up (imports, the encoder), so it would overstate that cost.
        self._refresh()
        self._set_idle_status()

    @staticmethod
    def _defaults(model, layer: str, objective: str, size, steps, filters, count: int) -> tuple[int, int, int]:
        """(size, steps, number of filters) for the arguments left out: small inputs at their own
        size; otherwise the first of DEFAULT_CANDIDATES estimated to take FIRST_RUN_S at most."""
        try:
            given = None if filters is None else len(parse_filters(str(filters), count))
        except ValueError:  # the filters validator says what is wrong
            given = None
        if model.input_size[1] <= 64:
            return (model.input_size[1] if size is None else size), (128 if steps is None else steps), given or min(16, count)
        choice = None
        # One measurement, of the cheapest candidate; the others scaled from it by their arithmetic
        # (larger sizes and batches use the device better, so this errs towards the smaller ones).
        smallest = DEFAULT_CANDIDATES[-1]
        smallest = (smallest[0] if size is None else size, given or min(smallest[2], count))
        for candidate_size, candidate_steps, candidate_count in DEFAULT_CANDIDATES:
            choice = (candidate_size if size is None else size, candidate_steps if steps is None else steps, given or min(candidate_count, count))
            if model.device.type != "cpu":
                break
            try:
                fits = _scaled_estimate(model, layer, objective, choice[2], choice[1], choice[0], smallest, timed_steps=choice[1]) <= FIRST_RUN_S
            except Exception:  # settings the steps cannot run with: the validators and Run say what is wrong
                fits = False
            if fits:
                break
        return choice

    # -- validation -------------------------------------------------------------------------
    def unit_count(self) -> int:
        """How many units the slider and the filters text go over: the layer's filters, or the classes."""
        if self.objective == "class":
            return len(self.model.classes)
        return self.model.layer(self.layer).out_channels

    @traitlets.validate("filters")
    def _check_filters(self, proposal):
        if self.layer:
            try:
                parse_filters(proposal["value"], self.unit_count())
            except ValueError as error:
                raise traitlets.TraitError(str(error)) from None
        return proposal["value"]

    @traitlets.validate("filter_index")
    def _check_filter(self, proposal):
        value, count = proposal["value"], self.unit_count() if self.layer else 0
        if count and not 0 <= value < count:
            what = "classes" if self.objective == "class" else f"layer {self.layer}"
            raise traitlets.TraitError(f"filter_index {value} is out of range for {what} (valid: 0-{count - 1})")
        return value

    @traitlets.validate("steps", "size", "seed")
    def _check_counts(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        low, high = {"steps": (1, MAX_STEPS), "size": (1, MAX_SIDE), "seed": (0, None)}[name]
        try:
            return check_int(name if name != "size" else "size (pixels)", value, low=low, high=high)
        except (TypeError, ValueError) as error:
            raise traitlets.TraitError(str(error)) from None

    @traitlets.validate("variations")
    def _check_variations(self, proposal):
        if not 1 <= proposal["value"] <= MAX_VARIATIONS:
            raise traitlets.TraitError(f"variations must be between 1 and {MAX_VARIATIONS}, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("preset")
    def _check_preset(self, proposal):
        return self._check_choice("preset", proposal["value"], self.preset_options)

    @traitlets.validate("objective")
    def _check_objective(self, proposal):
        value = self._check_choice("objective", proposal["value"], self.objective_options)
        if value == "class":
            self.model.classes  # a model without a classifier raises here, naming the problem
            if not self.model.classes:
                raise traitlets.TraitError(f"objective 'class' needs a model with a classifier; {self.model.name} returns no class scores")
            self.class_names = list(self.model.classes)  # before the objective, so the view names classes at once
        return value

    def _on_objective_chosen(self, _change) -> None:
        self._objective_given = True  # a choice in the menu is the person's: respected on every layer

    # -- what to compute ----------------------------------------------------------------
    def used_objective(self) -> str:
        """The objective a run maximizes: ``objective``, except that when none was given, a
        layer whose conv reads the input (the first layer) uses its middle unit ("neuron"):
        its mean over the map would only make flat bright or dark images.

        >>> import cnn_widgets as cw
        >>> widget = cw.ActivationMaximization(cw.load_model("fashion-cnn"), layer="block1_conv1", filters="0-1", steps=8)
        >>> widget.used_objective(), widget.objective
        ('neuron', 'channel')
        """
        if self.objective == "channel" and not self._objective_given:
            return default_objective(self.model, self.layer)
        return self.objective

    def _window(self) -> "tuple[int, int, int, int] | None":
        """The pixels the middle unit of a first-layer filter sees, when that unit is maximized:
        the view shows only them, enlarged (the rest of the image does not reach the unit)."""
        if self.used_objective() != "neuron":
            return None
        return middle_unit_window(self.model, self.layer, self.size)

    def chosen_filters(self) -> list[int]:
        """The filters (or classes) the grid shows (parsed from the ``filters`` text)."""
        count = self.unit_count()
        try:
            return parse_filters(self.filters, count)
        except ValueError:  # a spec that fit the previous layer: show the first filters
            return list(range(min(16, count)))

    def _where(self) -> str:
        """What the units belong to: the layer's module path, or "class" for the output's classes."""
        return "class" if self.objective == "class" else self.model.layer(self.layer).path

    def _settings_key(self) -> tuple:
        """What an image depends on besides its filter: the settings and the weights' version
        (images optimized before the weights changed are not shown as current). Work over many
        filters (a drawing, a plan) computes it once and passes it to :meth:`_key`:
        ``weights_version`` reads every parameter of the model."""
        return (self._where(), self.used_objective(), self.steps, self.size, self.preset, self.seed, weights_version(self.model))

    def _key(self, filter_index: int, settings: tuple | None = None) -> tuple:
        return (settings or self._settings_key()) + (filter_index,)

    def _variations_key(self, filter_index: int) -> tuple:
        return self._key(filter_index) + ("variations", self.variations)

    def image(self, filter_index: int) -> np.ndarray | None:
        """The optimized image (H, W, 3) uint8 of a filter with the current settings, if computed."""
        return self._image(self._key(filter_index))

    def _image(self, key: tuple) -> np.ndarray | None:
        return self._results.get(key, self._previews.get(key))

    def variation_images(self, filter_index: int) -> list[np.ndarray]:
        """The ``variations`` different images of a filter (uint8 (H, W, 3) each), once computed; else []."""
        found = self._results.get(self._variations_key(filter_index))
        return list(found) if found is not None else []

    def _unit_name(self, unit: int) -> str:
        if self.objective == "class":
            return f"class {unit}: {self.model.classes[unit]}"
        return f"filter {unit}"

    def _missing(self, grid: bool) -> tuple[str, list[int]] | None:
        """The next batch to optimize: the grid's filters without a finished image (with Run),
        and the selected one; then the selected filter's variations. None when all are there."""
        selected, settings = self.filter_index, self._settings_key()
        units = [f for f in self.chosen_filters() if self._key(f, settings) not in self._results] if grid else []
        if self._key(selected, settings) not in self._results and selected not in units:
            units.append(selected)
        if units:
            return "images", units
        if self.variations > 1 and self._variations_key(selected) not in self._results:
            return "variations", [selected] * self.variations
        return None

    # -- running --------------------------------------------------------------------------
    def _job(self, cancel, report) -> str | None:
        """Run: the grid's filters, the selected one, then whatever the person moved to meanwhile."""
        return self._work(cancel, report, grid=True)

    def _show_selected(self, cancel, report) -> str | None:
        """Moving to a filter: optimize it (and its variations) if it has no image yet."""
        return self._work(cancel, report, grid=False)

    def _work(self, cancel, report, grid: bool) -> str | None:
        started = time.monotonic()
        self._grid_run = grid
        interrupted, self._interrupted = self._interrupted, ""
        made = 0
        try:
            while (batch := self._missing(grid)) is not None:
                kind, units = batch
                reached, steps, what = self._optimize(kind, units, cancel, report)
                made += len(units)
                if cancel.is_set():
                    if cancel.superseded:  # the newer request says what happened, this included
                        # A Run cut short matters more than a move to a filter that replaced another.
                        # One stopped before its first step lost nothing: not worth a word.
                        stopped = f"the run before stopped at step {reached} of {steps} ({what})" if reached else ""
                        self._interrupted = interrupted or stopped
                        return None
                    return f"stopped at step {reached} of {steps} ({what}, after {time.monotonic() - started:.1f} s): the images are kept as they were; press Run to start again"
                grid = False  # then only what the person moved to during the run
        finally:
            self._computing = set()
            self._grid_run = False
            self._requested = None
        before = f" · {interrupted}" if interrupted else ""
        if not made:
            return f"done{before} · {self._plan()}"
        return f"done in {time.monotonic() - started:.1f} s ({made} image{'s' if made > 1 else ''}){before} · {self._plan()}"

    def _optimize(self, kind: str, units: list[int], cancel, report) -> tuple[int, int, str]:
        """One maximize call; returns (last step reached, steps, what it optimized)."""
        variations = kind == "variations"
        settings = self._settings_key()
        keys = [self._variations_key(units[0])] if variations else [self._key(f, settings) for f in units]
        where, steps, size, objective, preset = self._where(), self.steps, self.size, self.used_objective(), self.preset
        what = (f"{len(units)} variations of {self._unit_name(units[0])}" if variations
                else ", ".join(self._unit_name(f) for f in units) if len(units) <= 2 else f"{len(units)} {'classes' if objective == 'class' else 'filters'}")
        if objective != "class":
            what += f" of {self.layer}"
        diversity = 0.0
        if variations:
            reached = self._reached.get(self._key(units[0], settings), 1.0)
            diversity = DIVERSITY_SHARE * max(abs(reached), 1e-3)
        self._computing = set(keys)
        self._history = [] if not variations else self._history
        for key in keys:
            self._stopped_at.pop(key, None)
        expected = self._run_seconds(len(units), steps, size)
        report(0.0, f"optimizing {what}: {_duration(expected)} expected")
        times: list[float] = []
        reached_step = 0
        last_values = None
        reported = drawn = -math.inf  # when the status and the view last heard of the run

        def progress(step, values, images):
            nonlocal reached_step, last_values, reported, drawn
            reached_step, last_values = step, values
            now = time.monotonic()
            times.append(now)
            if images is not None and not variations:
                for key, picture in zip(keys, images):
                    self._previews[key] = render.to_uint8_image(picture)
                self._keep_frame(settings)
            # The view hears of the run at most every STATUS_EVERY_S (and of its last step) and is
            # redrawn at most every PREVIEW_EVERY_S (and once the run ends, below): a fast run's steps
            # come faster than a person or the browser follows, and a drawing costs more than a small
            # model's step.
            draw = images is not None and not variations and now - drawn >= PREVIEW_EVERY_S
            if not (draw or step == steps or now - reported >= STATUS_EVERY_S):
                return
            reported = now
            if len(times) >= 3:  # the first step pays for warming up: measure from the second
                per_step = (times[-1] - times[0]) / (len(times) - 1)
                left = per_step * (steps - step)
                eta = f" · {_duration(left)} left"
                if per_step * steps > LONG_RUN_S and step < steps:
                    eta += f" (a {_duration(per_step * steps)[6:]} run: Stop, then fewer filters, steps or a smaller size)"
            else:
                eta = ""
            report(step / steps, f"step {step}/{steps}{eta} · {_measure(objective)} {float(values.mean()):.3g}")
            if draw:
                drawn = now
                self._refresh()

        images = maximize(
            self.model, None if objective == "class" else self.layer, units, steps=steps, size=size, seed=self.seed,
            objective=objective, diversity=diversity, progress=progress, preview_every=_preview_every(steps), cancel=cancel,
            **QUALITY_PRESETS[preset],
        )
        report(reached_step / steps)  # a run stopped between two reports: the progress says where it stopped
        if len(times) >= 3:
            per_step = (times[-1] - times[0]) / (len(times) - 1)
            _measured[(self.model.name, where, size, len(units), preset)] = per_step
        pictures = [render.to_uint8_image(picture) for picture in images]
        if variations:
            if not cancel.is_set():
                self._results[keys[0]] = np.stack(pictures)
        elif not cancel.is_set():
            for index, (key, picture) in enumerate(zip(keys, pictures)):
                self._results[key] = picture
                self._previews.pop(key, None)
                if last_values is not None:
                    self._reached[key] = float(last_values[index])
        else:
            for key, picture in zip(keys, pictures):
                self._previews[key] = picture
                self._stopped_at[key] = reached_step
            self._keep_frame(settings)  # the GIF ends where the run stopped
        self._computing = set()
        self._refresh()
        return reached_step, steps, what

    def _plan(self) -> str:
        """What a Run would do and cost now, and what twice the steps or the size would cost."""
        settings = self._settings_key()
        units = [f for f in self.chosen_filters() if self._key(f, settings) not in self._results]
        if self._key(self.filter_index, settings) not in self._results and self.filter_index not in units:
            units.append(self.filter_index)
        where = "classes" if self.objective == "class" else self.layer
        if not units:
            return (f"{where}: every chosen {'class' if self.objective == 'class' else 'filter'} is computed "
                    f"(choose more, or change steps, size or seed){self._first_layer_note()}")
        count = len(units)
        seconds, basis = self._run_seconds(count, self.steps, self.size, basis=True)
        more = self._run_seconds(count, 2 * self.steps, self.size)
        bigger = self._run_seconds(count, self.steps, 2 * self.size)
        size_note = "" if self.objective == "class" else f", at {2 * self.size} px {_duration(bigger)}"
        return (f"{where}: Run optimizes {count} image{'s' if count > 1 else ''} × {self.steps} steps at {self.size} px in "
                f"{_duration(seconds)} ({basis}; with {2 * self.steps} steps {_duration(more)}{size_note}){self._first_layer_note()}")

    def _first_layer_note(self) -> str:
        """What the first layer's view shows instead of a filter's mean, in plain words ("" elsewhere)."""
        window = self._window()
        if window is None:
            return ""
        return (f" · first layer: the pixels that excite the middle unit most; a first-layer filter sees only "
                f"{window[2]}x{window[3]} pixels, so the view shows those, enlarged")

    def _run_seconds(self, images: int, steps: int, size: int, basis: bool = False):
        """Seconds a run will take: its steps, measured (a short timing of real steps, or the steps
        of an earlier run at this size), plus redrawing the grid at each preview; with ``basis``,
        also the words saying what it is based on ("measured: 0.12 s per step, ...")."""
        from_run = _measured.get((self.model.name, self._where(), size, images, self.preset))
        if from_run is not None:  # a run's steps include its previews
            seconds = from_run * steps
            said = f"measured in the last run: {_seconds_text(from_run)} s per step"
        else:
            if size == self.size or self.objective == "class":
                per_step = _step_seconds(self.model, self.layer, self.objective, images, size, self.preset, self.steps)
            else:  # a size not timed: the timed size's step scaled by the arithmetic of both
                per_step = _scaled_estimate(self.model, self.layer, self.objective, images, 1, size, (self.size, images), self.preset, self.steps)
            drawn = min(steps // _preview_every(steps) + 1, 1 + math.floor(per_step * steps / PREVIEW_EVERY_S))
            seconds = per_step * steps + drawn * self._draw_seconds
            said = f"measured: {_seconds_text(per_step)} s per step, {_seconds_text(self._draw_seconds)} s per preview"
        return (seconds, said) if basis else seconds


    def _set_idle_status(self) -> None:
        """The status line when nothing runs: what a Run would do and cost."""
        if not self.running:
            self._worker.status = self._show_errors(self._plan) or ""

    # -- moving to a filter computes it -----------------------------------------------------
    def _on_filter_change(self, change) -> None:
        super()._on_filter_change(change)
        self._compute_selected()

    def _on_grid_change(self, change) -> None:
        if change["name"] in ("layer", "objective"):
            was_running = self.running and not self._requested  # a run for the other layer (moving the filter below may start one)
            count = self.unit_count()
            self.filter_count = count
            if self.filter_index >= count:
                self.filter_index = count - 1
            self._redraw_grid()
            if was_running:  # a run for the other layer: stop it, and say so
                self._requested = self._variations_key(self.filter_index)
                self._worker.submit(self._show_selected, status="changing layer")
                return
            self._compute_selected()
        else:
            self._redraw_grid()
            if self.running and not self._grid_run:  # optimizing the selected filter: again, with the new settings
                self._compute_selected()
        self._set_idle_status()

    def _compute_selected(self) -> None:
        """The selected filter has no image (or variations) yet: optimize it in the background.
        A Run in progress goes on; it optimizes the selected filter when its own are done."""
        if self._missing(grid=False) is None:
            return
        wanted = self._variations_key(self.filter_index)
        if self.running and (self._grid_run or wanted == self._requested):
            self._redraw_grid()  # its tile says it comes next
            return
        self._requested = wanted
        self._worker.submit(self._show_selected, status=f"optimizing {self._unit_name(self.filter_index)}")

    def _on_variations(self, _change) -> None:
        self._show_errors(self._draw_enlarged)
        self._compute_selected()

    def _draw_grid(self) -> None:
        started = time.perf_counter()
        super()._draw_grid()
        self._draw_seconds = time.perf_counter() - started

    def _refresh(self) -> None:
        self._version += 1
        self._redraw_grid()

    def _keep_frame(self, settings: tuple) -> None:
        """Keep the grid as it is now for the GIF: its filters and its tiles at the size the grid
        draws them (stitched when saved; every preview is kept, drawn or not)."""
        order = self.chosen_filters()
        self._history.append((order, fit_tiles(self._tiles(order, settings), self._columns())))

    def save_gif(self, path, duration_ms: int = 150) -> None:
        """Write the optimization of the last run as an animated GIF: the grid at every preview.

        >>> import cnn_widgets as cw, tempfile, os
        >>> widget = cw.ActivationMaximization(cw.load_model("fashion-cnn"), layer="block1_conv2", filters="0-3", steps=32)
        >>> widget.run(wait=True)
        >>> path = os.path.join(tempfile.mkdtemp(), "progress.gif"); widget.save_gif(path); os.path.getsize(path) > 0
        True
        """
        if not self._history:
            raise RuntimeError("nothing to animate yet: press Run (or call run()) first")
        frames = [self._stitch(tiles, self._columns(), [f"#{f}" for f in order])[0] for order, tiles in self._history]
        render.save_gif(frames, path, duration_ms=duration_ms)

    # -- drawing --------------------------------------------------------------------------
    def _grid_key(self) -> tuple:
        return super()._grid_key() + (self._version, self.variations)

    def _blank(self) -> np.ndarray:
        return np.full((self.size, self.size, 3), PLACEHOLDER, np.uint8)

    def _grid_tiles(self):
        self._grid_cache.clear()  # results change underneath; keep only the current picture
        order = self.chosen_filters()
        settings = self._settings_key()
        tiles = self._tiles(order, settings)
        titles = [self._unit_name(f) + (f" · {state}" if (state := self._state(f, settings)) else "") for f in order]
        return tiles, titles, order

    def _tiles(self, order: list[int], settings: tuple) -> np.ndarray:
        """The grid's tiles (N, size, size, 3): each filter's image as far as it is, or a blank."""
        window, tiles = self._window(), []
        for f in order:
            picture = self._image(self._key(f, settings))
            tiles.append(self._blank() if picture is None or picture.shape[:2] != (self.size, self.size) else self._seen(picture, window))
        return np.stack(tiles)

    def _stitch(self, tiles, columns=None, labels=None):
        if labels is not None and self.objective == "class":
            labels = [self.model.classes[int(label[1:])] for label in labels]  # "#7" -> "Sneaker"
        return TileViewer._stitch(tiles, columns, labels)

    def _title(self) -> str:
        if self.objective == "class":
            return f"{self.model.label} · the output's classes · {len(self.model.classes)} classes: the input each class score likes most"
        return super()._title()

    def _state(self, filter_index: int, settings: tuple | None = None) -> str:
        """How far the filter's image is: "" when finished, else in progress, stopped or not computed yet."""
        key = self._key(filter_index, settings)
        if key in self._results:
            return ""
        if key in self._computing:
            return "in progress"
        if key in self._stopped_at:
            return f"stopped at step {self._stopped_at[key]} of {self.steps}: select it or press Run to start again"
        if self.running and filter_index == self.filter_index:
            return "next, when the running optimization ends"
        return "not computed yet: select it or press Run"

    def _tile(self, filter_index: int) -> np.ndarray:
        """The filter's tile in the grid."""
        return self._tiles([filter_index], self._settings_key())[0]

    @staticmethod
    def _seen(picture: np.ndarray, window: "tuple[int, int, int, int] | None") -> np.ndarray:
        """The part of an image the maximized unit sees (``window``, from :meth:`_window`), enlarged
        to the image's size (blocks of nearest pixels) inside a one-pixel gray frame, so that white
        or black edge pixels stay apart from the page and the next tile; the whole image when the
        unit sees more (``window`` None)."""
        if window is None:
            return picture
        top, left, height, width = window
        inner_height, inner_width = picture.shape[0] - 2, picture.shape[1] - 2
        rows = top + np.arange(inner_height) * height // inner_height
        columns = left + np.arange(inner_width) * width // inner_width
        framed = np.full_like(picture, FRAME_GRAY)
        framed[1:-1, 1:-1] = picture[rows][:, columns]
        return framed

    def _enlarged_name(self, filter_index: int) -> str:
        """What the enlarged view shows: "class 9: Ankle boot (of 10 classes)", "filter 3 of 64"."""
        if self.objective == "class":
            return f"{self._unit_name(filter_index)} (of {self.unit_count()} classes)"
        return f"{self._unit_name(filter_index)} of {self.model.layer(self.layer).out_channels}"

    def picture(self) -> np.ndarray:
        """What the widget shows: the grid and, beside it, the enlarged image with a line naming
        it as the view's caption does ("class 9: Ankle boot (of 10 classes)", "filter 3 of 64")."""
        tile = self._enlarged_picture
        lines = [self._enlarged_name(self.filter_index)]
        if (window := self._window()) is not None:
            lines.append(f"middle unit's {window[2]}x{window[3]} pixels, enlarged")
        named = np.concatenate([tile, text_band(lines, tile.shape[1])], axis=0)
        return render.side_by_side([self._grid_picture, named], gap=16)

    def _enlarged(self, filter_index: int):
        settings, window = self._settings_key(), self._window()
        key = self._key(filter_index, settings)
        picture = self._image(key)
        state = self._state(filter_index, settings) or "finished"
        if key in self._reached:
            state += f", {_measure(self.used_objective())} reached {self._reached[key]:.3g}"
        shown = self._seen(picture, window) if picture is not None else self._blank()
        size = f"{self.size}x{self.size} px" if window is None else f"shown: {window[2]}x{window[3]} of the {self.size}x{self.size} px optimized"
        caption = f"{self._enlarged_name(filter_index)} · {size}, {self.steps} steps, {self.preset} · {state}"
        if window is not None:
            caption += (f" · first layer: the pixels that excite the middle unit most, bright where the filter's weights are "
                        f"positive and dark where negative; a first-layer filter sees only {window[2]}x{window[3]} pixels, "
                        f"so only those are shown, enlarged")
        if self.variations > 1:
            variants = self.variation_images(filter_index)
            if variants:
                shown = render.grid(np.stack([self._seen(v, window) for v in variants]), columns=math.ceil(math.sqrt(len(variants))), padding=2)
                caption += f" · {len(variants)} variations, made different from each other by a diversity penalty"
            else:
                caption += f" · {self.variations} variations: {'in progress' if self.running else 'not computed yet'} (the image alone is shown)"
        return enlarge(shown, ENLARGED), caption


def _measure(objective: str) -> str:
    """What the objective's value is, in words."""
    return {"class": "score", "neuron": "middle unit's activation"}.get(objective, "mean activation")


def _seconds_text(seconds: float) -> str:
    """'0.0043', '0.12', '1.8', '100': two significant digits, no exponent."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"


def _preview_every(steps: int) -> int:
    """A run shows its images about 16 times."""
    return max(1, steps // 16)


def _step_seconds(model, layer, objective: str, images: int, size: int, preset: str = "high", steps: int = cost.CALIBRATION_STEPS) -> float:
    """Seconds per step of the optimization alone, from a few real steps (no more than the run's
    ``steps``) timed once (:func:`cnn_widgets.engine.optvis.cost.step_seconds`)."""
    return cost.step_seconds(model, None if objective == "class" else layer, images=images, size=size, objective=objective,
                             timed_steps=steps, **QUALITY_PRESETS[preset])


def _scaled_estimate(model, layer, objective: str, images: int, steps: int, size: int, measured: tuple[int, int],
                     preset: str = "high", timed_steps: int = cost.CALIBRATION_STEPS) -> float:
    """Seconds a run of ``images`` at ``size`` will take, from the step measured at ``measured``
    = (size, images), scaled by the arithmetic of both (:func:`cost.step_flops`): for a size not run yet."""
    measured_size, measured_images = measured
    ratio = (cost.step_flops(model, layer, size, images, objective) / cost.step_flops(model, layer, measured_size, measured_images, objective))
    return _step_seconds(model, layer, objective, measured_images, measured_size, preset, timed_steps) * ratio * steps
