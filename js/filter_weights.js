// FilterWeights: the tile viewer plus a choice of view (color, per-channel, summary).

function render({ model, el }) {
  return tileViewer({ model, el }, "filter-weights", [choiceControl(model, "view", "view", "view_options")]);
}

export default { render };
