// UnitView: one filter as OpenAI Microscope shows a unit, in four panels side by side:
// its weights, its feature visualization, its dataset examples and its map for the image.
// Every text is set as text.
import { bindImage, errorLine, h, reportLeaving } from "./common.js";

const PICTURES = ["filter_png", "visualization_png", "examples_png", "map_png"];

export function render({ model, el }) {
  const cleanups = [];
  const root = h("div", { class: "cw-widget cw-unit-view" });
  const heading = h("div", { class: "cw-unit-heading" });
  const captions = [];
  const panels = model.get("panels").map((name, slot) => {
    const picture = h("img", { alt: name });
    const caption = h("div", { class: "cw-caption cw-unit-caption" });
    captions.push(caption);
    const sync = () => { picture.hidden = !model.get(PICTURES[slot])?.byteLength; };
    model.on(`change:${PICTURES[slot]}`, sync);
    cleanups.push(bindImage(model, PICTURES[slot], picture), () => model.off(`change:${PICTURES[slot]}`, sync));
    sync();
    const kind = name.toLowerCase().replaceAll(" ", "-");
    return h("div", { class: `cw-unit-panel cw-unit-${kind}` }, [h("b", { class: "cw-unit-title", text: name }), picture, caption]);
  });
  const error = errorLine(model);
  root.append(heading, h("div", { class: "cw-unit-row" }, panels), error);
  el.append(root);
  const syncText = () => {
    heading.textContent = model.get("heading");
    model.get("captions").forEach((text, slot) => { if (captions[slot]) captions[slot].textContent = text; });
  };
  model.on("change:heading", syncText);
  model.on("change:captions", syncText);
  syncText();
  cleanups.push(error.cleanup, reportLeaving(model, root), () => { model.off("change:heading", syncText); model.off("change:captions", syncText); });
  return () => cleanups.forEach((fn) => fn());
}

export default { render };
