// TrainingMonitor: loss and accuracy curves drawn here (SVG) from the numbers Python
// sends, and the snapshot pictures (filters, feature maps, Grad-CAM, predictions) with a
// timeline slider to look back at any snapshot (cnn_widgets/widgets/monitor.py).
import { bindImage, errorLine, h, lineKey } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
};

/** Round axis ticks between lo and hi (about `count` of them). */
export function ticks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

/** One chart: x = training step, y = `key` of the train and validation series. */
function chart(title, yLabel, key, format) {
  const W = 300, H = 150, L = 46, R = 10, T = 8, B = 34;
  const root = svg("svg", { class: "cw-chart", "data-chart": key, width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const draw = (curves, shownStep) => {
    root.replaceChildren();
    const series = [["train", curves.train, "cw-train"], ["validation", curves.validation, "cw-validation"]]
      .map(([name, data, cls]) => [name, (data ? data.step.map((s, i) => [s, data[key][i]]) : []).filter(([, y]) => y !== null && Number.isFinite(y)), cls]);
    const points = series.flatMap(([, p]) => p);
    const xMax = Math.max(1, curves.steps || 0, ...points.map(([x]) => x));
    let yMin = key === "accuracy" ? 0 : Math.min(0, ...points.map(([, y]) => y));
    // No numbers yet (or only zeros): a 0..1 axis, not 0..1e-6 (whose labels do not fit)
    let yMax = key === "accuracy" ? 1 : Math.max(...points.map(([, y]) => y)) > 0 ? Math.max(...points.map(([, y]) => y)) : 1;
    const x = (v) => L + (v / xMax) * (W - L - R);
    const y = (v) => T + (1 - (v - yMin) / (yMax - yMin)) * (H - T - B);
    for (const v of ticks(yMin, yMax)) {
      root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "cw-gridline" }));
      const label = svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "cw-tick" });
      label.textContent = format(v);
      root.append(label);
    }
    for (const v of ticks(0, xMax)) {
      const label = svg("text", { x: x(v), y: H - B + 14, "text-anchor": "middle", class: "cw-tick" });
      label.textContent = String(v);
      root.append(label);
    }
    const xTitle = svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "cw-axis-title" });
    xTitle.textContent = "training step";
    const yTitle = svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", class: "cw-axis-title", transform: `rotate(-90 12 ${(T + H - B) / 2})` });
    yTitle.textContent = yLabel;
    root.append(xTitle, yTitle);
    if (shownStep !== undefined && shownStep !== null) {  // the snapshot shown below, on the curve's step axis
      root.append(svg("line", { x1: x(shownStep), x2: x(shownStep), y1: T, y2: H - B, class: "cw-shown-step", "data-step": shownStep }));
    }
    for (const [name, p, cls] of series) {
      if (p.length === 0) continue;
      const line = svg("polyline", { class: `cw-line ${cls}`, "data-series": name, "data-points": p.length, points: p.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ") });
      root.append(line);
      if (p.length === 1) root.append(svg("circle", { class: `cw-dot ${cls}`, cx: x(p[0][0]), cy: y(p[0][1]), r: 2.5 }));
    }
    root.dataset.points = String(series[0][1].length);
  };
  const node = h("figure", { class: "cw-chart-box" }, [h("figcaption", { class: "cw-chart-title", text: title }), root]);
  return { node, draw };
}

function picture(cls, alt) {
  const img = h("img", { class: `cw-snapshot-img ${cls}`, alt });
  const caption = h("figcaption", { class: "cw-caption" });
  return { img, caption, node: h("figure", { class: `cw-snapshot-figure ${cls}-figure` }, [img, caption]) };
}

function render({ model, el }) {
  const loss = chart("Loss (cross-entropy, lower is better)", "loss", "loss", (v) => v.toPrecision(2));
  const accuracy = chart("Accuracy (share of correct labels)", "accuracy", "accuracy", (v) => `${Math.round(v * 100)}%`);
  const legend = h("div", { class: "cw-legend" }, [
    h("span", { class: "cw-key cw-train" }, [lineKey("solid"), "train (each step)"]),
    h("span", { class: "cw-key cw-validation" }, [lineKey("solid"), "validation"]),
    h("span", { class: "cw-key cw-shown" }, [lineKey("marker"), "snapshot shown below"]),
  ]);
  const slider = h("input", { type: "range", min: "0", max: "0", step: "1", value: "0", class: "cw-timeline", title: "snapshot" });
  const stepLabel = h("span", { class: "cw-slider-label cw-step-label" });
  const follow = h("button", { type: "button", class: "cw-follow", text: "newest" });
  const every = h("span", { class: "cw-caption cw-every" });
  const filters = picture("cw-filters", "first-layer filters");
  const maps = picture("cw-maps", "feature maps");
  const cam = picture("cw-cam", "Grad-CAM");
  const predictions = h("ol", { class: "cw-predictions" });
  const error = errorLine(model);
  const root = h("div", { class: "cw-widget cw-monitor", tabindex: "0" }, [
    h("div", { class: "cw-title", text: "Training monitor" }),
    h("div", { class: "cw-charts" }, [loss.node, accuracy.node]),
    legend,
    h("div", { class: "cw-controls" }, [h("label", { class: "cw-control cw-slider" }, [h("span", { text: "snapshot at" }), slider, stepLabel]), follow, every]),
    h("div", { class: "cw-snapshots" }, [
      h("div", { class: "cw-snapshot-col" }, [h("div", { class: "cw-section-title", text: "First-layer filters" }), filters.node]),
      h("div", { class: "cw-snapshot-col" }, [h("div", { class: "cw-section-title", text: "Feature maps of the image" }), maps.node]),
      h("div", { class: "cw-snapshot-col" }, [h("div", { class: "cw-section-title", text: "Where it looks · top 3 predictions" }), cam.node, predictions]),
    ]),
    error,
  ]);
  el.append(root);

  const shownIndex = () => {
    const steps = model.get("snapshot_steps");
    const index = model.get("index");
    return index < 0 ? steps.length - 1 : Math.min(index, steps.length - 1);
  };
  const drawCurves = () => {
    const curves = model.get("curves") || {};
    const shown = model.get("snapshot_steps")[shownIndex()];
    loss.draw(curves, shown);
    accuracy.draw(curves, shown);
  };
  const syncTimeline = () => {
    const steps = model.get("snapshot_steps");
    const k = shownIndex();
    slider.max = String(Math.max(0, steps.length - 1));
    slider.value = String(Math.max(0, k));
    slider.disabled = steps.length < 2;
    stepLabel.textContent = k >= 0 ? `step ${steps[k]} (${k + 1} of ${steps.length})` : "no snapshot yet";
    root.dataset.snapshotCount = String(steps.length);
    root.dataset.shownStep = k >= 0 ? String(steps[k]) : "";
    follow.disabled = model.get("index") < 0;
    drawCurves();
  };
  const syncCaptions = () => {
    const captions = model.get("captions") || {};
    filters.caption.textContent = captions.filters || "";
    maps.caption.textContent = captions.maps || "";
    cam.caption.textContent = captions.cam || "";
  };
  const syncPredictions = () => {
    predictions.replaceChildren(...model.get("predictions").map((p) => h("li", { class: "cw-prediction" }, [
      h("span", { class: "cw-prediction-name", text: p.name }),
      h("span", { class: "cw-bar", style: `width: ${Math.round(p.probability * 100)}px` }),
      h("span", { class: "cw-prediction-probability", text: `${(p.probability * 100).toFixed(1)}%` }),
    ])));
  };
  const syncEvery = () => { every.textContent = model.get("every_text"); };
  slider.addEventListener("input", () => { model.set("index", Number(slider.value)); model.save_changes(); syncTimeline(); });
  follow.addEventListener("click", () => { model.set("index", -1); model.save_changes(); syncTimeline(); });
  const releases = [
    bindImage(model, "filters_png", filters.img),
    bindImage(model, "maps_png", maps.img),
    bindImage(model, "cam_png", cam.img),
  ];
  const listeners = [
    ["change:curves", drawCurves], ["change:snapshot_steps", syncTimeline], ["change:index", syncTimeline],
    ["change:captions", syncCaptions], ["change:predictions", syncPredictions], ["change:every_text", syncEvery],
  ];
  for (const [event, fn] of listeners) model.on(event, fn);
  drawCurves(); syncTimeline(); syncCaptions(); syncPredictions(); syncEvery();
  return () => {
    for (const [event, fn] of listeners) model.off(event, fn);
    for (const release of releases) release();
    error.cleanup();
  };
}

export default { render };
