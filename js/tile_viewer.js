// The grid viewer shared by FilterWeights and FeatureMaps: controls, a grid
// image whose tiles are clickable, an enlarged view of the selected filter,
// keyboard navigation (left/right: filter, up/down: layer) and an error line.
import { bindImage, choiceControl, errorLine, h, reportLeaving, throttle } from "./common.js";
import { colorbar } from "./colorbar.js";
import { kernelNumbers } from "./kernel_numbers.js";
import { tileAt, tileBox } from "./tile_layout.js";

// ``unitLabel(index)`` names a unit on the slider ("filter 3" unless a widget says otherwise, as
// ActivationMaximization does for classes: "class 3: Dress").
export function tileViewer({ model, el }, kind, extraControls = [], { unitLabel = (index) => `filter ${index}` } = {}) {
  const cleanups = [];
  // JupyterLab must not treat our arrow keys as its own shortcuts (cell navigation).
  const root = h("div", { class: `cw-widget cw-tile-viewer cw-${kind}`, tabindex: "0", "data-lm-suppress-shortcuts": "true" });
  const title = h("div", { class: "cw-title" });

  // Filter slider: the label follows at once, Python hears at most every 25 ms.
  const slider = h("input", { type: "range", min: "0", step: "1", "data-trait": "filter_index", title: "filter" });
  const sliderLabel = h("span", { class: "cw-slider-label" });
  const sendFilter = throttle((value) => { model.set("filter_index", value); model.save_changes(); }, 25);
  slider.addEventListener("input", () => { sliderLabel.textContent = unitLabel(Number(slider.value)); sendFilter(Number(slider.value)); });

  const layerControl = choiceControl(model, "layer", "layer", "layer_options",
    (o) => `${o.name} · ${o.channels} × ${o.shape.slice(1).join("×")}`);
  const controls = h("div", { class: "cw-controls" }, [
    layerControl,
    h("label", { class: "cw-control cw-slider" }, [sliderLabel, slider]),
    choiceControl(model, "scale", "normalization", "normalization_options",
      (value) => ({ layer: "one for the layer", tile: "each tile its own", fixed: "fixed range" })[value] || value),
    choiceControl(model, "colormap", "colormap", "colormap_options"),
    ...extraControls,
  ]);
  for (const control of controls.children) if (control.cleanup) cleanups.push(control.cleanup);

  const gridImage = h("img", { class: "cw-grid", alt: "grid of filters", draggable: "false" });
  const highlight = h("div", { class: "cw-highlight" });
  const gridWrap = h("div", { class: "cw-grid-wrap" }, [gridImage, highlight]);
  const tileImage = h("img", { class: "cw-tile", alt: "selected filter" });
  const caption = h("figcaption", { class: "cw-caption" });
  const gridBar = colorbar(model, "grid_colorbar");
  const tileBar = colorbar(model, "tile_colorbar");
  const numbers = kernelNumbers(model);
  const enlarged = h("figure", { class: "cw-enlarged" }, [tileImage, tileBar, caption, numbers]);
  // What the tiles, rows and columns are; the grid scrolls inside its column when it is
  // taller than the window, so the enlarged view beside it stays in sight.
  const gridCaption = h("div", { class: "cw-grid-caption" });
  const gridScroll = h("div", { class: "cw-grid-scroll" }, [gridWrap]);
  // Overlay scrollbars are easy to miss: say so when part of the grid is out of sight.
  const gridMore = h("div", { class: "cw-grid-more", text: "scroll the grid to see every tile", hidden: "" });
  const syncMore = () => {
    const hidden = gridScroll.scrollHeight - gridScroll.clientHeight;
    gridMore.hidden = !(hidden > 2 && gridScroll.scrollTop + gridScroll.clientHeight < gridScroll.scrollHeight - 2);
  };
  gridScroll.addEventListener("scroll", syncMore, { passive: true });
  const resized = typeof ResizeObserver === "function" ? new ResizeObserver(syncMore) : null;
  resized?.observe(gridScroll);
  resized?.observe(gridWrap);
  cleanups.push(() => resized?.disconnect());
  const error = errorLine(model);
  cleanups.push(error.cleanup, reportLeaving(model, root), gridBar.cleanup, tileBar.cleanup, numbers.cleanup);
  root.append(title, controls,
    h("div", { class: "cw-body" }, [h("div", { class: "cw-grid-column" }, [gridCaption, gridScroll, gridMore, gridBar]), enlarged]), error);
  el.append(root);

  // Which grid position a point of the grid image falls on (-1 for padding or outside).
  const positionAt = (event) => {
    const layout = model.get("grid_layout");
    if (!layout || !gridImage.naturalWidth) return -1;
    const rect = gridImage.getBoundingClientRect();
    return tileAt(layout, (event.clientX - rect.left) * gridImage.naturalWidth / rect.width,
      (event.clientY - rect.top) * gridImage.naturalHeight / rect.height);
  };
  gridImage.addEventListener("click", (event) => {
    const position = positionAt(event);
    if (position < 0) return;
    model.set("filter_index", model.get("tile_order")[position]);
    model.save_changes();
    root.focus({ preventScroll: true });
    // Where the page is narrower than grid and enlarged view side by side, bring the
    // enlarged view into sight (no scrolling when it already is).
    enlarged.scrollIntoView({ block: "nearest", inline: "nearest" });
  });
  gridImage.addEventListener("mousemove", (event) => {
    const position = positionAt(event);
    gridImage.title = position < 0 ? "" : model.get("tile_titles")[position] || "";
  });

  // Outline the selected filter's tile, in percent so it follows any resizing.
  const placeHighlight = () => {
    const box = tileBox(model.get("grid_layout"), model.get("tile_order").indexOf(model.get("filter_index")));
    if (!box) { highlight.hidden = true; return; }
    Object.assign(highlight.style, { left: `${box.left}%`, top: `${box.top}%`, width: `${box.width}%`, height: `${box.height}%` });
    highlight.hidden = false;
  };

  const syncSelection = () => {
    const count = model.get("filter_count"), index = model.get("filter_index");
    slider.max = String(Math.max(0, count - 1));
    slider.value = String(index);
    sliderLabel.textContent = unitLabel(index);
    slider.title = unitLabel(index);
    root.dataset.filterIndex = String(index);
    root.dataset.layer = model.get("layer");
    placeHighlight();
  };
  const syncGrid = () => {
    const layout = model.get("grid_layout") || {};
    root.dataset.tileCount = String(layout.n || 0);
    title.textContent = model.get("title");
    syncSelection();
  };

  // Time from a key press to the new enlarged image on screen, for tests and benchmarks.
  let keyAt = null;
  const painted = () => {
    root.dataset.paints = String(Number(root.dataset.paints || 0) + 1);
    if (keyAt !== null) { root.dataset.lastLatencyMs = (performance.now() - keyAt).toFixed(1); keyAt = null; }
  };
  cleanups.push(bindImage(model, "grid_png", gridImage, placeHighlight));
  cleanups.push(bindImage(model, "tile_png", tileImage, painted));
  const syncCaption = () => { caption.textContent = model.get("tile_caption"); };
  const syncGridCaption = () => {
    gridCaption.textContent = model.get("grid_caption") || "";
    gridCaption.hidden = !gridCaption.textContent;
  };
  for (const [event, fn] of [["change:grid_layout", syncGrid], ["change:tile_order", syncGrid], ["change:title", syncGrid],
    ["change:filter_index", syncSelection], ["change:filter_count", syncSelection], ["change:layer", syncSelection],
    ["change:tile_caption", syncCaption], ["change:grid_caption", syncGridCaption]]) {
    model.on(event, fn);
    cleanups.push(() => model.off(event, fn));
  }
  syncGrid();
  syncCaption();
  syncGridCaption();

  root.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement && event.target.type === "file") return;
    const count = model.get("filter_count"), index = model.get("filter_index");
    let handled = true;
    if (event.key === "ArrowRight") { keyAt = performance.now(); model.set("filter_index", Math.min(count - 1, index + 1)); }
    else if (event.key === "ArrowLeft") { keyAt = performance.now(); model.set("filter_index", Math.max(0, index - 1)); }
    else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const names = model.get("layer_options").map((o) => o.name);
      const at = names.indexOf(model.get("layer")) + (event.key === "ArrowDown" ? 1 : -1);
      if (at >= 0 && at < names.length) model.set("layer", names[at]);
    } else handled = false;
    if (handled) { event.preventDefault(); event.stopPropagation(); model.save_changes(); }
  });

  return () => cleanups.forEach((fn) => fn());
}
