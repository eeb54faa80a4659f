// ActivationMaximization: the tile viewer plus Run/Stop, progress, and the optimization settings:
// what to maximize (a filter of the layer, or a class of the output), how many different images
// of the selected filter to show (variations). The layer menu is hidden for classes.
import { choiceControl, h, numberControl, runControls } from "./common.js";
import { tileViewer } from "./tile_viewer.js";

function textControl(model, label, trait, attrs = {}) {
  const input = h("input", { type: "text", "data-trait": trait, title: label, ...attrs });
  const sync = () => { input.value = model.get(trait); };
  input.addEventListener("change", () => { model.set(trait, input.value); model.save_changes(); });
  model.on(`change:${trait}`, sync);
  sync();
  const node = h("label", { class: "cw-control" }, [h("span", { text: label }), input]);
  node.cleanup = () => model.off(`change:${trait}`, sync);
  return node;
}

function render({ model, el }) {
  const run = runControls(model);
  // In class mode the slider names the class ("class 3: Dress"), not a filter.
  const unitLabel = (index) => (model.get("objective") === "class"
    ? `class ${index}: ${model.get("class_names")[index] ?? ""}` : `filter ${index}`);
  const cleanup = tileViewer({ model, el }, "maximization", [
    choiceControl(model, "maximize", "objective", "objective_options",
      (value) => ({ channel: "a filter of the layer", class: "a class of the output" })[value] || value),
    textControl(model, "filters", "filters", { size: "10", placeholder: "0-15, all" }),
    numberControl(model, "steps", "steps", { min: "1", max: "4096", step: "16" }),
    numberControl(model, "size", "size", { min: "8", max: "512", step: "8" }),
    choiceControl(model, "quality", "preset", "preset_options"),
    numberControl(model, "seed", "seed", { min: "0", step: "1" }),
    numberControl(model, "variations", "variations", { min: "1", max: "8", step: "1", title: "different images of the selected filter" }),
  ], { unitLabel });
  el.querySelector(".cw-controls").after(run);
  const root = el.querySelector(".cw-maximization");
  const layerControl = el.querySelector("select[data-trait=layer]").closest("label");
  const sliderLabel = el.querySelector(".cw-slider-label");
  const syncObjective = () => {
    const objective = model.get("objective");
    root.dataset.objective = objective;
    layerControl.hidden = objective === "class";  // classes belong to the output, not to a layer
    sliderLabel.textContent = unitLabel(model.get("filter_index"));
  };
  model.on("change:objective", syncObjective);
  model.on("change:class_names", syncObjective);
  syncObjective();
  return () => { cleanup(); run.cleanup(); model.off("change:objective", syncObjective); model.off("change:class_names", syncObjective); };
}

export default { render };
