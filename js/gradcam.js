// GradCAM: the model's top-5 predictions as a clickable list, the chosen class's
// heatmap over the image, pickers for method, layer, colormap and opacity, a
// second heatmap beside the first for comparison, each class with its probability,
// numbered colorbars (one scale for the image's classes by default), and an image picker.
// Python computes and paints; this module only shows traits and sends choices back.
// While the menus' view is not the one painted (`shown`), the picture is faded and
// says it is the previous choice, so menus and picture never disagree unannounced.
import { colorbarNode } from "./colorbar.js";
import { bindImage, choiceControl, errorLine, glyph, glyphLabel, h, imagePicker, lineKey, reportLeaving, throttle } from "./common.js";

// The traits that choose which maps are shown; `shown` holds their values at the last paint.
const VIEW_TRAITS = ["target_index", "method", "layer", "compare"];

const percent = (p) => `${(100 * p).toFixed(p >= 0.995 || p < 0.0005 ? 0 : 1)}%`;
const wholePercent = (p) => `${Math.round(100 * p)}%`;

function render({ model, el }) {
  const cleanups = [];
  const on = (event, fn) => { model.on(event, fn); cleanups.push(() => model.off(event, fn)); };
  const set = (trait, value) => { model.set(trait, value); model.save_changes(); };

  // JupyterLab must not treat our arrow keys as its own shortcuts (cell navigation).
  const root = h("div", { class: "cw-widget cw-gradcam", tabindex: "0", "data-lm-suppress-shortcuts": "true" });
  const title = h("div", { class: "cw-title" });

  // -- controls: method, layer, colormap, opacity, comparison ------------------------
  const methodControl = choiceControl(model, "method", "method", "method_options", (o) => o.label);
  const layerControl = choiceControl(model, "layer", "layer", "layer_options",
    (o) => `${o.name} · ${o.channels} × ${o.shape.slice(1).join("×")}`);
  const layerSelect = layerControl.querySelector("select");
  const colormapControl = choiceControl(model, "colormap", "colormap", "colormap_options");

  const opacity = h("input", { type: "range", min: "0", max: "1", step: "0.05", "data-trait": "opacity", title: "opacity of the heatmap" });
  const opacityLabel = h("span", { class: "cw-slider-label" });
  const sendOpacity = throttle((value) => set("opacity", value), 25);
  opacity.addEventListener("input", () => { opacityLabel.textContent = `opacity ${wholePercent(Number(opacity.value))}`; sendOpacity(Number(opacity.value)); });
  const syncOpacity = () => { opacity.value = String(model.get("opacity")); opacityLabel.textContent = `opacity ${wholePercent(model.get("opacity"))}`; };

  // One picker for the second heatmap: nothing, another class, or another method.
  const compareSelect = h("select", { "data-trait": "compare", title: "show a second heatmap beside the first" });
  const fillCompare = () => {
    const top = model.get("predictions");
    const topNames = new Set(top.map((p) => p.name));
    const classes = [
      ...top.map((p) => h("option", { value: p.name, text: `${p.name} (${percent(p.probability)})` })),
      ...model.get("class_options").filter((name) => !topNames.has(name)).map((name) => h("option", { value: name, text: name })),
    ];
    const methods = model.get("method_options").map((o) => h("option", { value: o.name, text: o.label }));
    compareSelect.replaceChildren(
      h("option", { value: "", text: "nothing (one heatmap)" }),
      h("optgroup", { label: "another class, same method" }, classes),
      h("optgroup", { label: "another method, same class" }, methods),
    );
    compareSelect.value = model.get("compare");
  };
  compareSelect.addEventListener("change", () => set("compare", compareSelect.value));
  const compareControl = h("label", { class: "cw-control cw-compare-line" }, [h("span", { text: "compare with" }), compareSelect]);
  const scaleControl = choiceControl(model, "scale", "scale", "scale_options", (o) => o.label);
  const scaleSelect = scaleControl.querySelector("select");
  cleanups.push(scaleControl.cleanup);
  const compareLine = h("div", { class: "cw-compare-controls" }, [compareControl, scaleControl]);

  const controls = h("div", { class: "cw-controls" }, [
    methodControl, layerControl, colormapControl,
    h("label", { class: "cw-control cw-slider cw-opacity" }, [opacityLabel, opacity]),
  ]);
  for (const control of [methodControl, layerControl, colormapControl]) cleanups.push(control.cleanup);

  // -- left column: the image and the predictions ---------------------------------------
  const thumbnail = h("img", { class: "cw-input-image", alt: "input image" });
  const picker = imagePicker(model, "explain an image of your own");
  cleanups.push(picker.cleanup);
  // The sample menu is as wide as the column allows (CSS); its full label, which may be long
  // ("cat (a color photo: not like fashion-cnn's pictures)"), is its tooltip and in the open list.
  const sampleSelect = picker.sample.querySelector("select");
  const syncSampleTitle = () => {
    const chosen = sampleSelect.selectedOptions[0];
    sampleSelect.title = chosen ? `image: ${chosen.textContent}` : "image";
  };
  sampleSelect.addEventListener("change", syncSampleTitle);
  const imageSection = h("div", { class: "cw-image-picker" }, [
    thumbnail,
    h("div", { class: "cw-image-controls" }, [picker.sample, picker.upload]),
  ]);

  const list = h("div", { class: "cw-predictions", role: "listbox", "aria-label": "top predictions" });
  const fillPredictions = () => {
    const top = model.get("predictions");
    list.replaceChildren(...top.map((p, rank) => {
      const row = h("button", { type: "button", class: "cw-prediction", role: "option", "data-index": String(p.index), title: `show where the network looks for ${p.name}` }, [
        h("span", { class: "cw-prediction-rank", text: String(rank + 1) }),
        h("span", { class: "cw-prediction-name", text: p.name }),
        h("span", { class: "cw-prediction-bar" }, [h("span", { class: "cw-prediction-fill", style: `width: ${(100 * p.probability).toFixed(1)}%` })]),
        h("span", { class: "cw-prediction-value", text: percent(p.probability) }),
        h("span", { class: "cw-badge" }),
      ]);
      row.addEventListener("click", () => { set("target_index", p.index); root.focus({ preventScroll: true }); });
      return row;
    }));
    root.dataset.predictionCount = String(top.length);
    syncSelection();
  };

  // Any class, not only the top 5.
  const classSelect = h("select", { "data-trait": "target_index", title: "explain any class of the model" });
  const fillClasses = () => {
    classSelect.replaceChildren(...model.get("class_options").map((name, index) => h("option", { value: String(index), text: name })));
    classSelect.value = String(model.get("target_index"));
  };
  classSelect.addEventListener("change", () => set("target_index", Number(classSelect.value)));
  const classControl = h("label", { class: "cw-control cw-any-class" }, [h("span", { text: "any class" }), classSelect]);

  const side = h("div", { class: "cw-side" }, [
    h("div", { class: "cw-section-title", text: "Image" }), imageSection,
    h("div", { class: "cw-section-title", text: `Top predictions` }),
    h("div", { class: "cw-hint", text: "click a class to see where the network looks for it" }), list, classControl,
  ]);

  // -- right column: the heatmaps --------------------------------------------------------
  // Each figure: the class and its probability, the overlay, a caption, and (when the two
  // maps are on their own scales) its own colorbar; one shared colorbar sits under both.
  const peakTip = "peak: the map's largest value, in the units written under its colorbar";
  const figure = (letter, img) => {
    const head = h("div", { class: "cw-panel-head" });
    const caption = h("figcaption", { class: "cw-caption", title: peakTip });
    const bar = colorbarNode();
    const node = h("figure", { class: `cw-heatmap cw-heatmap-${letter}` }, [head, img, caption, bar]);
    return { node, head, caption, bar };
  };
  const overlay = h("img", { class: "cw-overlay", alt: "heatmap over the image" });
  const second = h("img", { class: "cw-compare", alt: "second heatmap, for comparison" });
  const first = figure("a", overlay);
  const secondFigure = figure("b", second);
  const sharedBar = colorbarNode();
  sharedBar.classList.add("cw-shared-colorbar");
  const pending = h("div", { class: "cw-pending", role: "status" });
  const notice = h("div", { class: "cw-notice", role: "status" });
  const statusText = h("span", { class: "cw-status-text" });
  const stop = h("button", { class: "cw-stop", type: "button", text: "Stop", title: "stop computing this heatmap" });
  stop.addEventListener("click", () => model.send({ type: "stop" }));
  const status = h("div", { class: "cw-status cw-busy-line" }, [statusText, stop]);
  const heatmaps = h("div", { class: "cw-heatmaps" }, [first.node, secondFigure.node]);
  // What a cell of the layer is in the picture (its pixels, its receptive field), under the maps.
  const layerNote = h("div", { class: "cw-layer-note" });
  const main = h("div", { class: "cw-main" }, [compareLine, status, pending, notice, heatmaps, sharedBar, layerNote]);

  const trust = trustPanel(model);
  cleanups.push(trust.cleanup);
  main.append(trust.element);

  const error = errorLine(model);
  cleanups.push(error.cleanup, reportLeaving(model, root));
  root.append(title, controls, h("div", { class: "cw-gradcam-body" }, [side, main]), error);
  el.append(root);

  // -- keeping the view in step with the traits --------------------------------------------
  const count = (name) => () => { root.dataset[name] = String(Number(root.dataset[name] || 0) + 1); };
  cleanups.push(bindImage(model, "overlay_png", overlay, count("paints")));
  cleanups.push(bindImage(model, "compare_png", second, count("comparePaints")));
  cleanups.push(bindImage(model, "image_png", thumbnail));

  function syncSelection() {
    const target = model.get("target_index");
    const compare = model.get("compare");
    const comparingClass = compare && !model.get("method_options").some((o) => o.name === compare);
    for (const row of list.children) {
      const index = Number(row.dataset.index);
      const name = row.querySelector(".cw-prediction-name").textContent;
      const selected = index === target;
      row.classList.toggle("cw-selected", selected);
      row.classList.toggle("cw-compared", Boolean(comparingClass && name === compare));
      row.setAttribute("aria-selected", String(selected));
      row.querySelector(".cw-badge").textContent = comparingClass ? (selected ? "A" : name === compare ? "B" : "") : "";
    }
    classSelect.value = String(target);
    root.dataset.targetIndex = String(target);
  }
  const syncView = () => {
    const method = model.get("method");
    const option = model.get("method_options").find((o) => o.name === method);
    const usesLayer = !option || option.uses_layer;
    layerSelect.disabled = !usesLayer;
    layerControl.title = usesLayer ? "" : `${option.label} explains the pixels directly, so it uses no layer`;
    root.dataset.method = method;
    root.dataset.layer = model.get("layer");
    root.dataset.compare = model.get("compare");
    compareSelect.value = model.get("compare");
    const comparing = model.get("compare_png").byteLength > 0;
    secondFigure.node.hidden = !comparing;
    root.classList.toggle("cw-comparing", comparing);
    // One scale is a choice for the classes of one image (one map, or two classes); two methods have two units.
    const compare = model.get("compare");
    const classes = Boolean(compare) && !model.get("method_options").some((o) => o.name === compare);
    scaleSelect.disabled = Boolean(compare) && !classes;
    scaleControl.title = classes ? "one scale lets the colours of the two classes be compared"
      : compare ? "two methods have different units: each map has its own numbered scale"
      : "one scale (the top class's) lets the colours of this image's classes be compared";
    syncSelection();
    syncStale();
  };
  const syncCaptions = () => {
    const comparing = model.get("compare_png").byteLength > 0;
    first.caption.textContent = (comparing ? "A · " : "") + model.get("overlay_caption");
    secondFigure.caption.textContent = comparing ? "B · " + model.get("compare_caption") : "";
  };
  // Each map's class and probability, above it, from the view the picture shows.
  const syncHeads = () => {
    const panels = model.get("shown").panels || [];
    [first, secondFigure].forEach((item, i) => {
      const panel = panels[i];
      if (!panel) { item.head.replaceChildren(); return; }
      item.head.replaceChildren(
        h("span", { class: "cw-panel-letter", text: panels.length > 1 ? `${"AB"[i]} · ` : "" }),
        h("span", { class: "cw-panel-class", text: panel.class_name }),
        h("span", { class: "cw-panel-probability", text: `${percent(panel.probability)} probability` }),
      );
      item.node.dataset.probability = String(panel.probability);
    });
  };
  const syncColorbars = () => {
    const bars = model.get("colorbars");
    sharedBar.draw(bars.length === 1 ? bars[0] : {});
    first.bar.draw(bars.length > 1 ? bars[0] : {});
    secondFigure.bar.draw(bars.length > 1 ? bars[1] : {});
    root.dataset.colorbars = String(bars.length);
  };
  // The picture is the menus' view, or it is faded and says whose it is.
  const describe = (panels) => panels.map((p) => `${p.method} · ${p.class_name}`).join(" and ");
  function syncStale() {
    const shown = model.get("shown");
    const stale = !shown.panels || shown.image_name !== model.get("image_name") ||
      VIEW_TRAITS.some((trait) => shown[trait] !== model.get(trait));
    root.dataset.stale = String(stale);
    root.classList.toggle("cw-stale", stale);
    const why = model.get("busy") ? "the menus' choice is being computed"
      : model.get("error") ? "the menus' choice could not be computed (see the message below)"
      : model.get("notice") ? "the menus' choice was stopped" : "waiting for the kernel";
    pending.textContent = stale && shown.panels
      ? `Faded: the previous choice (${describe(shown.panels)}), not what the menus say; ${why}.` : "";
    pending.hidden = !pending.textContent;
  }
  const syncNotice = () => { notice.textContent = model.get("notice"); notice.hidden = !notice.textContent; syncStale(); };
  const syncTitle = () => { title.textContent = model.get("title"); };
  const syncLayerNote = () => { layerNote.textContent = model.get("layer_note"); layerNote.hidden = !layerNote.textContent; };
  const syncBusy = () => {
    const busy = model.get("busy");
    root.dataset.busy = String(busy);
    statusText.textContent = busy ? model.get("status") || "computing…" : "";
    status.hidden = !busy;
    syncStale();
  };

  on("change:predictions", () => { fillPredictions(); fillCompare(); });
  on("change:class_options", () => { fillClasses(); fillCompare(); });
  on("change:method_options", fillCompare);
  on("change:target_index", syncSelection);
  for (const trait of ["method", "layer", "compare", "compare_png"]) on(`change:${trait}`, syncView);
  for (const trait of ["target_index", "image_name", "error"]) on(`change:${trait}`, syncStale);
  on("change:shown", () => { syncHeads(); syncStale(); });
  on("change:colorbars", syncColorbars);
  on("change:notice", syncNotice);
  for (const trait of ["overlay_caption", "compare_caption", "compare_png"]) on(`change:${trait}`, syncCaptions);
  on("change:opacity", syncOpacity);
  on("change:title", syncTitle);
  on("change:layer_note", syncLayerNote);
  // After the picker's own listeners have set the menu's value.
  for (const trait of ["sample", "sample_options", "image_name"]) on(`change:${trait}`, () => queueMicrotask(syncSampleTitle));
  on("change:busy", syncBusy);
  on("change:status", syncBusy);

  fillClasses();
  fillCompare();
  fillPredictions();
  syncOpacity();
  syncView();
  syncCaptions();
  syncHeads();
  syncColorbars();
  syncNotice();
  syncTitle();
  syncLayerNote();
  syncSampleTitle();
  syncBusy();

  // Up and down walk through the predictions.
  root.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement) return;
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const indices = model.get("predictions").map((p) => p.index);
    const at = indices.indexOf(model.get("target_index")) + (event.key === "ArrowDown" ? 1 : -1);
    event.preventDefault();
    event.stopPropagation();
    if (at >= 0 && at < indices.length) set("target_index", indices[at]);
  });

  return () => cleanups.forEach((fn) => fn());
}

// -- how far to trust the first map (issue 13) -----------------------------------------------
// On demand: Python's check_trust() fills the `trust` trait with the sanity check's rank
// correlations and the ROAD curves, and `trust_png` with the randomized model's map.
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attributes = {}, text = "") => {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
};

// Probability of the class against the fraction of pixels removed (most relevant first).
function roadChart(road) {
  const width = 260, height = 150, left = 34, right = 16, top = 8, bottom = 28;
  const x = (f) => left + f * (width - left - right);
  const y = (p) => top + (1 - p) * (height - top - bottom);
  const chart = svg("svg", { class: "cw-road-chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "class probability as the most relevant pixels are removed, for the map and for a random map" });
  for (const tick of [0, 0.5, 1]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: "cw-road-grid" }));
    chart.append(svg("text", { x: left - 4, y: y(tick) + 3, "text-anchor": "end", class: "cw-road-tick" }, tick.toFixed(1)));
    chart.append(svg("text", { x: x(tick), y: height - bottom + 12, "text-anchor": "middle", class: "cw-road-tick" }, `${Math.round(100 * tick)}%`));
  }
  chart.append(svg("text", { x: (left + width - right) / 2, y: height - 3, "text-anchor": "middle", class: "cw-road-tick" }, "pixels removed, most relevant first"));
  const line = (values, kind) => {
    const points = [[0, road.probability], ...road.removed.map((f, i) => [f, values[i]])].sort((a, b) => a[0] - b[0]);
    chart.append(svg("polyline", { class: `cw-road-line cw-road-${kind}`, fill: "none",
      points: points.map(([f, p]) => `${x(f).toFixed(1)},${y(p).toFixed(1)}`).join(" ") }));
  };
  line(road.random, "random");
  line(road.map, "map");
  return chart;
}

function trustPanel(model) {
  const button = h("button", { type: "button", class: "cw-trust-button", text: "How far to trust this map?",
    title: "check the map with the model's top layers randomized, and how much removing its pixels hurts the class" });
  button.addEventListener("click", () => model.send({ type: "trust" }));
  const body = h("div", { class: "cw-trust-body" });
  const randomized = h("img", { class: "cw-trust-randomized", alt: "the same map for the model with its output layer randomized" });
  const original = h("img", { class: "cw-trust-original", alt: "the map of the trained model" });
  const element = h("div", { class: "cw-trust" }, [h("div", { class: "cw-section-title", text: "How far to trust this map" }), button, body]);

  const sync = () => {
    const trust = model.get("trust");
    element.dataset.state = trust.state || "";
    button.disabled = trust.state === "computing";
    if (trust.state === "computing") { body.replaceChildren(h("div", { class: "cw-hint", text: `checking ${trust.about}…` })); return; }
    if (trust.state === "stopped" || trust.state === "failed") {
      body.replaceChildren(h("div", { class: "cw-hint", text: trust.state === "stopped" ? `stopped checking ${trust.about}` : trust.error }));
      return;
    }
    if (trust.state !== "done") { body.replaceChildren(); return; }
    const { sanity, road } = trust;
    const rho = (r) => (r === null ? "undefined (a flat map)" : r.toFixed(2));
    const sanityCheck = h("div", { class: "cw-trust-sanity" + (sanity.flagged ? " cw-trust-flagged" : "") }, [
      h("div", { class: "cw-trust-heading", text: "Sanity check (Adebayo et al. 2018): the model with its top layers randomized" }),
      h("div", { class: "cw-trust-pair" }, [
        h("figure", { class: "cw-trust-figure" }, [original, h("figcaption", { class: "cw-caption", text: "trained model" })]),
        h("figure", { class: "cw-trust-figure" }, [randomized, h("figcaption", { class: "cw-caption", text: `${sanity.randomized[0]} randomized` })]),
      ]),
      h("div", { class: "cw-trust-rho", text: `output layer ${sanity.randomized[0]} randomized · rank correlation with the map ρ = ${rho(sanity.rho[0])}` }),
      h("div", { class: "cw-trust-steps" }, ["ρ as more layers are randomized: ",
        ...sanity.randomized.flatMap((name, i) => [...(i ? [glyph("arrow")] : []), `${name} ${rho(sanity.rho[i])}`])]),
      sanity.flagged ? glyphLabel(h("div", { class: "cw-trust-verdict" }), "warning", sanity.warning)
        : h("div", { class: "cw-trust-verdict", text: `passes: the map changes when the model's learned weights are gone (ρ < ${sanity.threshold})` }),
    ]);
    const faithfulness = h("div", { class: "cw-trust-road" + (road.beats_chance ? "" : " cw-trust-flagged") }, [
      h("div", { class: "cw-trust-heading", text: "Faithfulness (ROAD, Rong et al. 2022): remove the most relevant pixels first" }),
      roadChart(road),
      h("div", { class: "cw-trust-legend" }, [
        h("span", { class: "cw-road-key cw-road-map" }, [lineKey("solid"), "this map"]),
        h("span", { class: "cw-road-key cw-road-random" }, [lineKey("dashed"), "a random map"]),
      ]),
      h("div", { class: "cw-trust-score", text: `ROAD ${road.road.toFixed(3)} for this map, ${road.random_road.toFixed(3)} for a random map (higher is more faithful): ` +
        (road.beats_chance ? "beats chance" : "does not beat chance") }),
    ]);
    body.replaceChildren(sanityCheck, faithfulness);
  };
  const unbindOriginal = bindImage(model, "overlay_png", original);
  const unbind = bindImage(model, "trust_png", randomized);
  model.on("change:trust", sync);
  sync();
  return { element, cleanup: () => { unbind(); unbindOriginal(); model.off("change:trust", sync); } };
}

export default { render };
