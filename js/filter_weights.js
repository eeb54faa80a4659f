// FilterWeights: the tile viewer plus a choice of view (color, per-channel, summary).
import { choiceControl } from "./common.js";
import { tileViewer } from "./tile_viewer.js";

function render({ model, el }) {
  return tileViewer({ model, el }, "filter-weights", [choiceControl(model, "view", "view", "view_options")]);
}

export default { render };
