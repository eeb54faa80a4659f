// DatasetExamples: the dataset images that excite the selected filter most. Its own
// layer menu and filter slider; the arrow keys move through filters (left/right) and
// layers (up/down), handled here (not by a notebook's widget library), so they work the
// same in JupyterLab, Notebook 7 and marimo. Every text is set as text.
import { bindImage, choiceControl, errorLine, h, reportLeaving, throttle } from "./common.js";

export function render({ model, el }) {
  const cleanups = [];
  const on = (event, fn) => { model.on(event, fn); cleanups.push(() => model.off(event, fn)); };
  // JupyterLab must not treat our arrow keys as its own shortcuts (cell navigation).
  const root = h("div", { class: "cw-widget cw-dataset-examples", tabindex: "0", "data-lm-suppress-shortcuts": "true" });

  const layerControl = choiceControl(model, "layer", "layer", "layer_options",
    (o) => `${o.name} · ${o.channels} × ${o.shape.slice(1).join("×")}`);
  cleanups.push(layerControl.cleanup);
  // Filter slider: the label follows at once, Python hears at most every 25 ms.
  const slider = h("input", { type: "range", min: "0", step: "1", "data-trait": "filter_index", title: "filter" });
  const sliderLabel = h("span", { class: "cw-slider-label" });
  const sendFilter = throttle((value) => { model.set("filter_index", value); model.save_changes(); }, 25);
  slider.addEventListener("input", () => { sliderLabel.textContent = `filter ${slider.value}`; sendFilter(Number(slider.value)); });
  const controls = h("div", { class: "cw-controls" }, [
    layerControl,
    h("label", { class: "cw-control cw-slider cw-examples-filter" }, [sliderLabel, slider]),
    h("span", { class: "cw-keys-hint", text: "arrow keys: left/right filter, up/down layer" }),
  ]);

  const bar = h("progress", { class: "cw-progress", max: "1", value: "0" });
  const status = h("span", { class: "cw-status" });
  const scanning = h("div", { class: "cw-examples-scan" }, [bar, status]);
  const caption = h("div", { class: "cw-caption cw-examples-caption" });
  const picture = h("img", { class: "cw-examples-picture", alt: "the dataset images that excite the filter most" });
  const list = h("ol", { class: "cw-examples-list" });
  const error = errorLine(model);
  cleanups.push(error.cleanup, bindImage(model, "examples_png", picture, () => { root.dataset.paints = String(Number(root.dataset.paints || 0) + 1); }));
  root.append(controls, scanning, caption, picture, list, error);
  el.append(root);
  cleanups.push(reportLeaving(model, root));

  const syncSelection = () => {
    const count = model.get("filter_count"), index = model.get("filter_index");
    slider.max = String(Math.max(0, count - 1));
    slider.value = String(index);
    sliderLabel.textContent = `filter ${index}`;
    root.dataset.filterIndex = String(index);
    root.dataset.layer = model.get("layer");
  };
  const syncScan = () => {
    bar.value = model.get("progress");
    status.textContent = model.get("status");
    scanning.hidden = !model.get("status");
  };
  const syncText = () => {
    caption.textContent = model.get("caption");
    list.replaceChildren(...model.get("example_lines").map((line) => h("li", { text: line })));
    picture.hidden = !model.get("examples_png")?.byteLength;
  };
  for (const trait of ["filter_index", "filter_count", "layer"]) on(`change:${trait}`, syncSelection);
  for (const trait of ["progress", "status"]) on(`change:${trait}`, syncScan);
  for (const trait of ["caption", "example_lines", "examples_png"]) on(`change:${trait}`, syncText);
  syncSelection();
  syncScan();
  syncText();

  root.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLSelectElement) return;
    const count = model.get("filter_count"), index = model.get("filter_index");
    let handled = true;
    if (event.key === "ArrowRight") model.set("filter_index", Math.min(count - 1, index + 1));
    else if (event.key === "ArrowLeft") model.set("filter_index", Math.max(0, index - 1));
    else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const names = model.get("layer_options").map((o) => o.name);
      const at = names.indexOf(model.get("layer")) + (event.key === "ArrowDown" ? 1 : -1);
      if (at >= 0 && at < names.length) model.set("layer", names[at]);
    } else handled = false;
    if (handled) { event.preventDefault(); event.stopPropagation(); model.save_changes(); syncSelection(); }
  });
  return () => cleanups.forEach((fn) => fn());
}

export default { render };
