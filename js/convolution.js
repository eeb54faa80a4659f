// ConvolutionExplainer: a kernel sliding over an image, one position at a time,
// with its numbers (patch, kernel, products, sums, bias, output), the output
// pixel appearing in the feature map, then ReLU and max-pooling. Python
// computes and paints the maps; this module shows the numbers of the `step`
// trait, draws the outlines over the pictures, and moves the position from the
// keyboard, a click on a map, the step buttons or the play timer.
import { bindImage, choiceControl, errorLine, glyph, glyphLabel, h, imagePicker, numberControl, reportLeaving } from "./common.js";

const SPEEDS = [["slow", 900], ["normal", 400], ["fast", 120]];

/** A number as the tables show it: fixed decimals, no "-0.00". */
function shown(value, digits = 2) {
  if (value === null || value === undefined) return "?";
  const text = value.toFixed(digits);
  return Number(text) === 0 ? (0).toFixed(digits) : text;
}

/** "1 pixel" or "2×3 pixels": how far the kernel moves per step. */
function stepText(stride) {
  const [rows, cols] = stride;
  if (rows === cols) return rows === 1 ? "1 pixel" : `${rows} pixels`;
  return `${rows} rows / ${cols} columns`;
}

/** A light background for a signed number: blue for negative, red for positive, stronger when larger. */
function tint(value, limit) {
  if (!limit || value === null) return "";
  const strength = Math.min(1, Math.abs(value) / limit) * 0.55;
  return value < 0 ? `background: rgba(33, 102, 172, ${strength.toFixed(3)})` : `background: rgba(178, 24, 43, ${strength.toFixed(3)})`;
}

/** A small grid of numbers as a table; `mask` marks the padding cells. */
function numberTable(rows, { className, mask, limit, title }) {
  const largest = limit || Math.max(1e-12, ...rows.flat().map((v) => Math.abs(v)));
  const body = rows.map((row, i) => h("tr", {}, row.map((value, j) => {
    const padding = mask && mask[i][j];
    return h("td", {
      class: padding ? "cw-padding-cell" : "",
      style: padding ? undefined : tint(value, largest),
      title: padding ? `padding: ${value} (outside the image)` : String(value),
      text: shown(value),
    });
  })));
  return h("table", { class: `cw-numbers ${className}`, title }, [h("tbody", {}, body)]);
}

function render({ model, el }) {
  const cleanups = [];
  const on = (event, fn) => { model.on(event, fn); cleanups.push(() => model.off(event, fn)); };
  const set = (trait, value) => { model.set(trait, value); model.save_changes(); };
  const step = () => model.get("step") || {};

  // JupyterLab must not treat our arrow keys as its own shortcuts (cell navigation).
  const root = h("div", { class: "cw-widget cw-convolution", tabindex: "0", "data-lm-suppress-shortcuts": "true" });
  const title = h("div", { class: "cw-title" });
  const intro = h("p", { class: "cw-intro", text:
    "A convolution slides a small grid of numbers, the kernel, over the image. At each position it multiplies " +
    "every input number under the kernel by the kernel number at the same place, adds up these products and a bias: " +
    "the result is one pixel of the output, the feature map. Use the arrow keys, click the feature map, or press Play." });

  // -- controls ------------------------------------------------------------------------------
  const picker = imagePicker(model, "convolve an image of your own");
  cleanups.push(picker.cleanup);
  const filterControl = numberControl(model, "filter", "filter_index", { min: "0", max: String(model.get("filter_count") - 1) });
  cleanups.push(filterControl.cleanup);

  const kernelSelect = h("select", { "data-kernel-choice": "", title: "the kernel that slides over the image" });
  const kernelText = h("input", { type: "text", class: "cw-kernel-text", placeholder: "0 -1 0; -1 4 -1; 0 -1 0",
    title: "rows separated by ';', numbers by spaces", "aria-label": "your kernel" });
  const kernelApply = h("button", { type: "button", class: "cw-button", text: "use" });
  const ownKernel = h("span", { class: "cw-own-kernel" }, [kernelText, kernelApply]);
  const sendKernel = (text) => model.send({ type: "kernel", text });
  const asText = (rows) => rows.map((row) => row.map((v) => String(Number(v.toFixed(4)))).join(" ")).join("; ");
  const fillKernels = () => {
    const presets = model.get("kernel_presets");
    kernelSelect.replaceChildren(
      h("option", { value: "filter", text: `filter of ${model.get("layer")} (learned)` }),
      ...Object.keys(presets).map((name) => h("option", { value: `preset:${name}`, text: `${name} (your kernel)` })),
      h("option", { value: "own", text: "type your own kernel…" }),
    );
  };
  const syncKernel = () => {
    const kernel = model.get("kernel");
    const presets = model.get("kernel_presets");
    if (!kernel.length) {
      if (kernelSelect.value !== "own") kernelSelect.value = "filter";
    } else {
      const text = asText(kernel);
      const preset = Object.keys(presets).find((name) => asText(presets[name]) === text);
      if (kernelSelect.value !== "own") kernelSelect.value = preset ? `preset:${preset}` : "own";
      if (document.activeElement !== kernelText) kernelText.value = text;
    }
    ownKernel.hidden = kernelSelect.value !== "own";
    filterControl.querySelector("input").disabled = kernel.length > 0;
    root.dataset.custom = String(kernel.length > 0);
  };
  kernelSelect.addEventListener("change", () => {
    const choice = kernelSelect.value;
    ownKernel.hidden = choice !== "own";
    if (choice === "filter") sendKernel("");
    else if (choice.startsWith("preset:")) sendKernel(asText(model.get("kernel_presets")[choice.slice(7)]));
    else kernelText.focus();
  });
  kernelApply.addEventListener("click", () => sendKernel(kernelText.value));
  kernelText.addEventListener("keydown", (event) => { if (event.key === "Enter") sendKernel(kernelText.value); });
  const kernelControl = h("label", { class: "cw-control" }, [h("span", { text: "kernel" }), kernelSelect]);

  const previous = glyphLabel(h("button", { type: "button", class: "cw-button cw-step-back", title: "one position back (left arrow)" }), "back", "step");
  const play = glyphLabel(h("button", { type: "button", class: "cw-button cw-play", title: "slide the kernel by itself (space)" }), "play", "play");
  const next = glyphLabel(h("button", { type: "button", class: "cw-button cw-step-next", title: "one position on (right arrow)" }), "forward", "step", true);
  const restart = glyphLabel(h("button", { type: "button", class: "cw-button cw-restart", title: "back to the first position (Home)" }), "restart", "start");
  let interval = SPEEDS[1][1];
  const speed = h("select", { title: "how fast Play moves", "aria-label": "speed" },
    SPEEDS.map(([name, ms]) => h("option", { value: String(ms), text: name })));
  speed.value = String(interval);
  speed.addEventListener("change", () => { interval = Number(speed.value); });

  const controls = h("div", { class: "cw-controls" }, [picker.sample, picker.upload, kernelControl, ownKernel, filterControl]);
  const moving = h("div", { class: "cw-controls cw-moving" }, [restart, previous, play, next,
    h("label", { class: "cw-control" }, [h("span", { text: "speed" }), speed]),
    h("span", { class: "cw-hint", text: "keys: arrows move, space plays or pauses, Home goes back to the start" })]);

  // -- pictures ------------------------------------------------------------------------------
  const picture = (className, alt, overlayClass) => {
    const img = h("img", { class: className, alt, draggable: "false" });
    const box = h("div", { class: `cw-box ${overlayClass}` });
    const frame = h("div", { class: "cw-frame" }, [img, box]);
    return { img, box, frame };
  };
  const input = picture("cw-input-map", "input image with its padding", "cw-window");
  const output = picture("cw-output-map", "output feature map", "cw-pixel");
  const relu = picture("cw-relu-map", "feature map after ReLU", "cw-pixel");
  const pooled = picture("cw-pooled-map", "feature map after max-pooling", "cw-pixel");
  const reluSource = h("div", { class: "cw-box cw-pool-window" });
  relu.frame.append(reluSource);
  output.frame.title = "click a pixel to move the kernel there";
  relu.frame.title = "click a pixel to move the kernel there";
  const caption = (text) => h("figcaption", { class: "cw-caption" }, text);
  const inputCaption = caption("");
  const outputCaption = caption("");
  const reluCaption = caption("");
  const pooledCaption = caption("");
  const figure = (heading, parts, captionNode) => h("figure", { class: "cw-figure" }, [h("div", { class: "cw-figure-title", text: heading }), ...parts, captionNode]);
  const colorbar = h("img", { class: "cw-colorbar", alt: "color scale" });
  const low = h("span", { class: "cw-scale-low" });
  const high = h("span", { class: "cw-scale-high" });
  const scale = h("div", { class: "cw-scale", title: "the colors of the three maps: blue negative, white 0, red positive" }, [low, colorbar, h("span", { class: "cw-scale-zero", text: "0" }), high]);
  const maps = h("div", { class: "cw-maps" }, [
    figure("1 · input", [input.frame], inputCaption),
    h("div", { class: "cw-arrow" }, [glyph("arrow")]),
    figure("2 · output (feature map)", [output.frame, scale], outputCaption),
    h("div", { class: "cw-arrow" }, [glyph("arrow")]),
    figure("3 · ReLU", [relu.frame], reluCaption),
    h("div", { class: "cw-arrow" }, [glyph("arrow")]),
    figure("4 · max-pooling", [pooled.frame], pooledCaption),
  ]);

  // -- the arithmetic ----------------------------------------------------------------------
  const arithmetic = h("div", { class: "cw-arithmetic" });
  const units = h("div", { class: "cw-units" });
  const note = h("div", { class: "cw-note" });

  const error = errorLine(model);
  cleanups.push(error.cleanup, reportLeaving(model, root));
  root.append(title, intro, controls, moving, maps, units, arithmetic, note, error);
  el.append(root);

  cleanups.push(bindImage(model, "input_png", input.img));
  cleanups.push(bindImage(model, "output_png", output.img, () => { root.dataset.paints = String(Number(root.dataset.paints || 0) + 1); }));
  cleanups.push(bindImage(model, "relu_png", relu.img));
  cleanups.push(bindImage(model, "pooled_png", pooled.img));
  cleanups.push(bindImage(model, "colorbar_png", colorbar));

  const place = (box, top, left, height, width, rows, cols) => {
    box.style.top = `${(100 * top) / rows}%`;
    box.style.left = `${(100 * left) / cols}%`;
    box.style.height = `${(100 * height) / rows}%`;
    box.style.width = `${(100 * width) / cols}%`;
  };

  const showStep = () => {
    const s = step();
    if (s.row === undefined) return;
    const [top, bottom, left, right] = s.padding;
    const paddedRows = s.input_height + top + bottom;
    const paddedCols = s.input_width + left + right;
    place(input.box, s.window[0] + top, s.window[1] + left, s.span[0], s.span[1], paddedRows, paddedCols);
    place(output.box, s.row, s.col, 1, 1, s.map_height, s.map_width);
    place(relu.box, s.row, s.col, 1, 1, s.map_height, s.map_width);
    if (s.pool) {
      place(pooled.box, s.pool.row, s.pool.col, 1, 1, s.pooled_height, s.pooled_width);
      place(reluSource, s.pool.top, s.pool.left, s.pool.size, s.pool.size, s.map_height, s.map_width);
    }
    pooled.box.hidden = reluSource.hidden = !s.pool;

    const paddingWord = s.padding_mode === "zeros" ? "zeros" : `${s.padding_mode} padding`;
    const padded = top + bottom + left + right > 0;
    inputCaption.replaceChildren(
      `${s.input_height}×${s.input_width} image` + (padded ? `, with a border of ${paddingWord} (blue-gray) so the kernel also fits at the edges` : ""),
      h("br"), `${s.span[0]}×${s.span[1]} kernel (blue square), moving ${stepText(s.stride)} at a time (the stride)` +
        (s.dilation.some((d) => d > 1) ? `, taps ${s.dilation.join("×")} pixels apart (dilation)` : ""),
    );
    const outputValue = h("b", { class: "cw-output-value", "data-value": String(s.output), text: shown(s.output, 3) });
    outputCaption.replaceChildren(`${s.map_height}×${s.map_width} map · row ${s.row}, column ${s.col} = `, outputValue,
      h("br"), "gray dotted pixels: not computed yet (the kernel has not been there)",
      h("br"), "colors of maps 2–4: blue below 0, white 0, red above 0");
    reluCaption.replaceChildren("ReLU sets every negative number to 0: ", h("b", { text: `max(${shown(s.output, 3)}, 0) = ${shown(s.relu, 3)}` }));
    pooledCaption.replaceChildren(`${s.pool_size}×${s.pool_size} max-pooling keeps the largest number of each ${s.pool_size}×${s.pool_size} window ` +
      `(outlined on the ReLU map): ${s.pooled_height}×${s.pooled_width}` +
      (s.pool ? "" : ` · row ${s.row} or column ${s.col} is left out (the map does not divide by ${s.pool_size})`));
    low.textContent = shown(-s.limit, 2);
    high.textContent = shown(s.limit, 2);

    // One line per input channel: patch × kernel = products, then their sum.
    const limit = Math.max(1e-12, ...s.channels.flatMap((c) => c.products.flat().map(Math.abs)));
    const rows = s.channels.map((c) => h("div", { class: "cw-channel", "data-channel": c.name }, [
      h("div", { class: "cw-channel-name", text: s.channels.length > 1 ? `${c.name} channel` : "" }),
      h("figure", { class: "cw-table" }, [numberTable(c.patch, { className: "cw-patch", mask: s.padding_mask, title: "the input numbers under the kernel" }), caption("input patch (under the blue square)")]),
      h("div", { class: "cw-operator", text: "×" }),
      h("figure", { class: "cw-table" }, [numberTable(c.kernel, { className: "cw-kernel", title: "the kernel's numbers (weights)" }), caption(s.custom ? "your kernel" : "kernel (weights the network learned)")]),
      h("div", { class: "cw-operator", text: "=" }),
      h("figure", { class: "cw-table" }, [numberTable(c.products, { className: "cw-products", limit, title: "each input number times the kernel number at the same place" }), caption("products")]),
      h("div", { class: "cw-operator" }, [glyph("arrow")]),
      h("div", { class: "cw-sum" }, [h("span", { class: "cw-muted", text: "sum of the products" }), h("b", { class: "cw-channel-sum", text: shown(c.sum, 3) })]),
    ]));
    const terms = s.channels.map((c, i) => h("span", { class: "cw-term" }, [
      i > 0 ? " + " : "", s.channels.length > 1 ? `${c.name} ` : "sum ", h("b", { text: shown(c.sum, 3) })]));
    const total = h("div", { class: "cw-total" }, [
      ...terms, " + bias ", h("b", { class: "cw-bias", text: shown(s.bias, 3), title: s.custom ? "your kernel has no bias" : "one learned number per filter, added at every position" }), " = ",
      h("b", { class: "cw-output-value cw-result", "data-value": String(s.output), text: shown(s.output, 3) }),
      h("span", { class: "cw-muted" }, [" ", glyph("arrow"), ` pixel (row ${s.row}, column ${s.col}) of the feature map`]),
    ]);
    const reluLine = h("div", { class: "cw-total" }, ["ReLU: ", h("b", { text: `max(${shown(s.output, 3)}, 0) = ${shown(s.relu, 3)}` })]);
    let poolLine;
    if (s.pool) {
      const values = s.pool.values.flat();
      poolLine = h("div", { class: "cw-total" }, [`max-pooling of the ${s.pool_size}×${s.pool_size} window: `,
        h("b", { text: `max(${values.map((v) => shown(v, 3)).join(", ")}) = ${s.pool.value === null ? "?" : shown(s.pool.value, 3)}` }),
        s.pool.value === null ? h("span", { class: "cw-muted", text: "  (? = not computed yet: the window is finished later)" }) : ""]);
    } else {
      poolLine = h("div", { class: "cw-total cw-muted", text: "max-pooling: this pixel is in no pooling window (left over at the edge)" });
    }
    arithmetic.replaceChildren(...rows, total, reluLine, poolLine);

    root.dataset.row = String(s.row);
    root.dataset.col = String(s.col);
    root.dataset.output = String(s.output);
    note.textContent = s.custom ? `How your kernel is applied: ${model.get("kernel_rule")}.`
      : "ReLU and max-pooling are applied to this map to show what they do; in the network, more layers may come between them.";
  };

  // -- moving the position ---------------------------------------------------------------------
  const moveTo = (row, col) => {
    const s = step();
    const r = Math.max(0, Math.min(s.map_height - 1, row));
    const c = Math.max(0, Math.min(s.map_width - 1, col));
    const [now_r, now_c] = model.get("position");
    if (r !== now_r || c !== now_c) set("position", [r, c]);
  };
  // The position asked for last (model.get answers before Python has replied), so
  // quick key presses add up instead of all starting from the step shown.
  const here = () => model.get("position");
  const advance = (by) => {
    const s = step();
    const [row, col] = here();
    const index = row * s.map_width + col + by;
    const last = s.map_height * s.map_width - 1;
    const at = Math.max(0, Math.min(last, index));
    moveTo(Math.floor(at / s.map_width), at % s.map_width);
    return index <= last;
  };
  const clickMap = (frame) => (event) => {
    const s = step();
    const rect = frame.querySelector("img").getBoundingClientRect();
    const row = Math.floor(((event.clientY - rect.top) / rect.height) * s.map_height);
    const col = Math.floor(((event.clientX - rect.left) / rect.width) * s.map_width);
    moveTo(row, col);
    root.focus({ preventScroll: true });
  };
  output.frame.addEventListener("click", clickMap(output.frame));
  relu.frame.addEventListener("click", clickMap(relu.frame));

  // Play: one move per interval, each after Python has answered the previous one.
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    timer = model.get("playing") ? setTimeout(tick, interval) : null;
  };
  const tick = () => {
    if (!model.get("playing")) return;
    const s = step();
    const [row, col] = here();
    if (row * s.map_width + col >= s.map_height * s.map_width - 1) { set("playing", false); return; }
    advance(1);
  };
  const syncPlaying = () => {
    const playing = model.get("playing");
    if (playing) glyphLabel(play, "pause", "pause"); else glyphLabel(play, "play", "play");
    root.dataset.playing = String(playing);
    schedule();
  };
  const togglePlay = () => {
    const s = step();
    const [row, col] = here();
    const atEnd = row * s.map_width + col >= s.map_height * s.map_width - 1;
    if (!model.get("playing") && atEnd) moveTo(0, 0);  // play again from the start
    set("playing", !model.get("playing"));
  };
  play.addEventListener("click", togglePlay);
  previous.addEventListener("click", () => { set("playing", false); advance(-1); });
  next.addEventListener("click", () => { set("playing", false); advance(1); });
  restart.addEventListener("click", () => { set("playing", false); moveTo(0, 0); });

  root.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement) return;
    if (event.key === " " && event.target instanceof HTMLButtonElement) return;  // the button's own click
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    if (moves[event.key]) {
      const [dr, dc] = moves[event.key];
      const [row, col] = here();
      if (model.get("playing")) set("playing", false);
      moveTo(row + dr, col + dc);
    } else if (event.key === " ") {
      togglePlay();
    } else if (event.key === "Home") {
      set("playing", false);
      moveTo(0, 0);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  });

  const syncTitle = () => { title.textContent = model.get("title"); };
  const syncUnits = () => { units.textContent = model.get("units"); };
  const syncFilterRange = () => {
    const last = model.get("filter_count") - 1;
    filterControl.querySelector("input").max = String(last);
    filterControl.querySelector("span").textContent = `filter (0–${last})`;
  };

  on("change:step", () => { showStep(); schedule(); });
  on("change:playing", syncPlaying);
  on("change:kernel", syncKernel);
  on("change:kernel_presets", () => { fillKernels(); syncKernel(); });
  on("change:title", syncTitle);
  on("change:units", syncUnits);
  on("change:filter_count", syncFilterRange);
  fillKernels();
  syncKernel();
  syncTitle();
  syncUnits();
  syncFilterRange();
  showStep();
  syncPlaying();

  return () => {
    clearTimeout(timer);
    // A view that goes away stops its timer; Python must not wait for a play that no view runs.
    if (model.get("playing")) set("playing", false);
    cleanups.forEach((fn) => fn());
  };
}

export default { render };
