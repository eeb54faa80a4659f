// ActivationMaximization: the tile viewer plus Run/Stop, progress, and the optimization settings.
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
  const cleanup = tileViewer({ model, el }, "maximization", [
    textControl(model, "filters", "filters", { size: "10", placeholder: "0-15, all" }),
    numberControl(model, "steps", "steps", { min: "1", max: "4096", step: "16" }),
    numberControl(model, "size", "size", { min: "8", max: "512", step: "8" }),
    choiceControl(model, "quality", "preset", "preset_options"),
    numberControl(model, "seed", "seed", { min: "0", step: "1" }),
  ]);
  el.querySelector(".cw-controls").after(run);
  return () => { cleanup(); run.cleanup(); };
}

export default { render };
