// Explorer: every view of one model in tabs, under a strip of its conv layers. The
// views are the widget's `views` trait (ipywidgets' "IPY_MODEL_<id>" references); each
// is drawn, the first time its tab is shown, by that view's own render function (from
// this bundle) on the view's model, got with model.widget_manager.get_model(id). That is
// all of anywidget's model API it needs, which JupyterLab, Notebook 7 and marimo share
// (marimo has no create_view, so no ipywidgets Tab). Every text is set as text.
import { errorLine, h } from "./common.js";
import deepdream from "./deepdream.js";
import examples from "./examples.js";
import featureMaps from "./feature_maps.js";
import filterWeights from "./filter_weights.js";
import gradcam from "./gradcam.js";
import maximization from "./maximization.js";
import unit from "./unit.js";

// view_kinds (cnn_widgets/widgets/explorer.py) -> the render function that draws the view.
const RENDERERS = {
  filter_weights: filterWeights.render, feature_maps: featureMaps.render, maximization: maximization.render,
  deepdream: deepdream.render, gradcam: gradcam.render, examples: examples.render, unit: unit.render,
};
// The views whose selection is the Explorer's: a change made in one is the Explorer's change too,
// so a host that reads the Explorer's value (marimo's mo.ui.anywidget) hears of it.
const SHARED = { layer: ["filter_weights", "feature_maps", "maximization", "deepdream", "examples"],
  filter_index: ["filter_weights", "feature_maps", "maximization", "examples"] };

export function render({ model, el }) {
  const cleanups = [];
  const on = (target, event, fn) => { target.on(event, fn); cleanups.push(() => target.off(event, fn)); };
  const root = h("div", { class: "cw-widget cw-explorer" });
  const heading = h("div", { class: "cw-explorer-heading", text: model.get("heading") });

  // The strip of conv layers: the chosen one pressed.
  const strip = h("div", { class: "cw-layer-strip", role: "group", "aria-label": "conv layers" });
  const layerButtons = model.get("layer_strip").map((layer) => {
    const button = h("button", { type: "button", class: "cw-strip-button", title: layer.tooltip, text: layer.label, "data-layer": layer.name });
    button.addEventListener("click", () => { model.set("layer", layer.name); model.save_changes(); });
    return button;
  });
  strip.append(...layerButtons);
  const syncLayer = () => {
    for (const button of layerButtons) button.setAttribute("aria-pressed", String(button.dataset.layer === model.get("layer")));
    root.dataset.layer = model.get("layer");
  };

  // The tabs: a tab bar, and one panel per view with its line on what it shows.
  const titles = model.get("titles");
  const tabBar = h("div", { class: "cw-tab-bar", role: "tablist" });
  const tabs = titles.map((title, index) => {
    const tab = h("button", { type: "button", role: "tab", class: "cw-tab", text: title });
    tab.addEventListener("click", () => { model.set("selected_index", index); model.save_changes(); syncTab(); });
    return tab;
  });
  tabBar.append(...tabs);
  const abouts = titles.map(() => h("div", { class: "cw-tab-about" }));
  const holders = titles.map(() => h("div", { class: "cw-tab-view" }));
  const panels = titles.map((title, index) => h("div", { class: "cw-tab-panel", role: "tabpanel", "aria-label": title, hidden: "" }, [abouts[index], holders[index]]));
  const syncAbout = () => { const about = model.get("about"); titles.forEach((title, i) => { abouts[i].textContent = about[title] || ""; }); };

  // Each view is drawn the first time its tab is shown, and kept (hidden) after.
  const drawn = new Map();
  const draw = (index) => {
    if (drawn.has(index)) return;
    const reference = model.get("views")[index], kind = model.get("view_kinds")[index];
    drawn.set(index, (async () => {
      const view = await model.widget_manager.get_model(String(reference).replace(/^IPY_MODEL_/, ""));
      for (const [trait, kinds] of Object.entries(SHARED)) {
        if (!kinds.includes(kind)) continue;
        on(view, `change:${trait}`, () => {
          if (view.get(trait) === model.get(trait)) return;
          model.set(trait, view.get(trait));
          model.save_changes();
        });
      }
      const cleanup = await RENDERERS[kind]({ model: view, el: holders[index] });
      if (typeof cleanup === "function") cleanups.push(cleanup);
    })().catch((error) => {
      holders[index].replaceChildren(h("div", { class: "cw-error", role: "alert", text: `could not show this view: ${error}` }));
    }));
  };
  const syncTab = () => {
    const selected = model.get("selected_index");
    tabs.forEach((tab, i) => tab.setAttribute("aria-selected", String(i === selected)));
    panels.forEach((panel, i) => { panel.hidden = i !== selected; });
    root.dataset.tab = titles[selected] || "";
    draw(selected);
  };

  const error = errorLine(model);
  cleanups.push(error.cleanup);
  root.append(heading, strip, tabBar, ...panels, error);
  el.append(root);
  on(model, "change:layer", syncLayer);
  on(model, "change:about", syncAbout);
  on(model, "change:selected_index", syncTab);
  syncLayer();
  syncAbout();
  syncTab();
  return () => cleanups.forEach((fn) => fn());
}

export default { render };
