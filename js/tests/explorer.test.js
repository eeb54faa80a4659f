// The Explorer's frontend (js/explorer.js), in jsdom: tabs drawn from its traits, each view drawn
// the first time its tab is shown from the model the widget manager gives (anywidget's
// get_model, all that marimo offers), and a view's filter change relayed to the Explorer.
import { expect, test } from "vitest";
import explorer from "../explorer.js";
import { recordingModel } from "./model.js";

const empty = () => new DataView(new ArrayBuffer(0));
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function models({ failing = false } = {}) {
  const examples = recordingModel({
    layer: "conv1", layer_options: [{ name: "conv1", channels: 8, shape: [8, 4, 4] }], filter_index: 0, filter_count: 8,
    examples_png: empty(), caption: "conv1, filter 0: the 2 of 5 images", example_lines: ["image #3 · true: cat"],
    progress: 1, status: "", error: "",
  });
  const unit = recordingModel({
    panels: ["Filter", "Feature visualization", "Dataset examples", "On this image"], captions: ["a", "b", "c", "d"],
    heading: "conv1, filter 0 of 8", filter_png: empty(), visualization_png: empty(), examples_png: empty(), map_png: empty(), error: "",
  });
  const parent = recordingModel({
    heading: "<b>net</b> · conv layers (click to select)", layer_strip: [{ name: "conv1", label: "conv1 · 8 · 4×4", tooltip: "features.0" }],
    views: ["IPY_MODEL_e1", "IPY_MODEL_u1"], view_kinds: ["examples", "unit"], titles: ["Dataset examples", "Unit"],
    about: { "Dataset examples": "The images that excite the filter most.", Unit: "The selected filter alone." },
    selected_index: 0, layer: "conv1", filter_index: 0, error: "",
  });
  const asked = [];
  parent.widget_manager = {
    get_model: async (id) => { asked.push(id); if (failing) throw new Error("Model not found"); return { e1: examples, u1: unit }[id]; },
  };
  return { parent, examples, unit, asked };
}

test("draws the tabs, and each view the first time its tab is shown, from the model get_model gives", async () => {
  const { parent, asked } = models();
  const el = document.createElement("div");
  document.body.append(el);
  explorer.render({ model: parent, el });
  expect(el.querySelector(".cw-explorer-heading").textContent).toBe("<b>net</b> · conv layers (click to select)");  // as text
  expect([...el.querySelectorAll("[role=tab]")].map((tab) => tab.textContent)).toEqual(["Dataset examples", "Unit"]);
  await settle();
  expect(asked).toEqual(["e1"]);  // only the shown tab's view
  const [first, second] = el.querySelectorAll("[role=tabpanel]");
  expect(first.hidden).toBe(false);
  expect(first.querySelector(".cw-tab-about").textContent).toBe("The images that excite the filter most.");
  expect(first.querySelector(".cw-dataset-examples .cw-examples-caption").textContent).toBe("conv1, filter 0: the 2 of 5 images");
  expect(second.querySelector(".cw-unit-view")).toBeNull();

  el.querySelectorAll("[role=tab]")[1].click();
  expect(parent.get("selected_index")).toBe(1);
  expect(parent.saves).toBeGreaterThan(0);
  await settle();
  expect(asked).toEqual(["e1", "u1"]);
  expect(first.hidden).toBe(true);
  expect(second.hidden).toBe(false);
  expect(second.querySelector(".cw-unit-view .cw-unit-heading").textContent).toBe("conv1, filter 0 of 8");
  el.remove();
});

test("an arrow key in a view moves its filter, and the Explorer's filter follows (marimo reads the Explorer's value)", async () => {
  const { parent, examples } = models();
  const el = document.createElement("div");
  document.body.append(el);
  explorer.render({ model: parent, el });
  await settle();
  const view = el.querySelector(".cw-dataset-examples");
  view.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
  expect(examples.get("filter_index")).toBe(1);
  expect(parent.get("filter_index")).toBe(1);
  el.remove();
});

test("a view whose model cannot be had says so in its tab", async () => {
  const { parent } = models({ failing: true });
  const el = document.createElement("div");
  explorer.render({ model: parent, el });
  await settle();
  expect(el.querySelector("[role=tabpanel] .cw-error").textContent).toContain("could not show this view: Error: Model not found");
});
