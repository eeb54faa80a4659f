// Shared helpers for every cnn-widgets frontend module: DOM building, image
// binding, controls bound to traits, run controls and the image picker. The
// widgets' modules import what they use; esbuild bundles it into each widget's
// module (scripts/build_frontend.mjs), so nothing is fetched from the network.

/** Create an element: h("div", {class: "x", onclick: f}, [children]). */
export function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of [].concat(children)) if (child) node.append(child);
  return node;
}

/** The MIME type of a picture's bytes, read from their signature: the kernel alone decides
 * the format (FORMAT in cnn_widgets/widgets/pictures.py); WebP, else PNG. */
export function imageType(bytes) {
  const text = (start, end) => String.fromCharCode(...bytes.subarray(start, end));
  return bytes.length >= 12 && text(0, 4) === "RIFF" && text(8, 12) === "WEBP" ? "image/webp" : "image/png";
}

/** Binary image trait (DataView or ArrayBuffer) to an object URL; the previous URL is revoked. */
export function imageURL(data, previous, mime) {
  if (previous) URL.revokeObjectURL(previous);
  if (!data || data.byteLength === 0) return "";
  const bytes = data instanceof DataView ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  return URL.createObjectURL(new Blob([bytes], { type: mime || imageType(bytes) }));
}

/** Keep an <img> showing a bytes trait; returns a function that releases the URL. */
export function bindImage(model, trait, img, onPainted) {
  let url = "";
  const update = () => {
    url = imageURL(model.get(trait), url);
    if (!url) { img.removeAttribute("src"); return; }
    img.src = url;
    if (onPainted) img.decode().then(() => requestAnimationFrame(() => onPainted())).catch(() => {});
  };
  model.on(`change:${trait}`, update);
  update();
  return () => { model.off(`change:${trait}`, update); if (url) URL.revokeObjectURL(url); };
}

/** A labelled <select> bound to a string trait, with options from another trait. */
export function choiceControl(model, label, trait, optionsTrait, format = (x) => x) {
  const select = h("select", { "data-trait": trait, title: label });
  const fill = () => {
    select.replaceChildren(...model.get(optionsTrait).map((option) => {
      const value = typeof option === "object" ? option.name : option;
      return h("option", { value, text: typeof option === "object" ? format(option) : format(value) });
    }));
    select.value = model.get(trait);
  };
  select.addEventListener("change", () => { model.set(trait, select.value); model.save_changes(); });
  const sync = () => { select.value = model.get(trait); };
  model.on(`change:${optionsTrait}`, fill);
  model.on(`change:${trait}`, sync);
  fill();
  const node = h("label", { class: "cw-control" }, [h("span", { text: label }), select]);
  node.hidden = model.get(optionsTrait).length === 0;  // a widget without such a choice hides it
  node.cleanup = () => { model.off(`change:${optionsTrait}`, fill); model.off(`change:${trait}`, sync); };
  return node;
}

/** A labelled number input bound to a numeric trait; integer traits get whole numbers, and
 *  a value outside the input's min/max (or not a number) snaps back to the trait's value. */
export function numberControl(model, label, trait, attrs = {}, integer = true) {
  const input = h("input", { type: "number", "data-trait": trait, title: label, ...attrs });
  const sync = () => { input.value = String(model.get(trait)); };
  input.addEventListener("change", () => {
    const value = integer ? Math.round(Number(input.value)) : Number(input.value);
    const { rangeUnderflow, rangeOverflow, badInput } = input.validity;
    if (input.value === "" || !Number.isFinite(value) || rangeUnderflow || rangeOverflow || badInput) return sync();
    model.set(trait, value);
    model.save_changes();
    sync();
  });
  model.on(`change:${trait}`, sync);
  sync();
  const node = h("label", { class: "cw-control" }, [h("span", { text: label }), input]);
  node.cleanup = () => model.off(`change:${trait}`, sync);
  return node;
}

/** Tell Python where the person is, so that the notebook's saved picture of the widget
 *  (cnn_widgets/widgets/static.py) is brought up to date only while nobody uses the view:
 *  an update makes JupyterLab and Notebook draw the view anew. The view announces itself
 *  ({type: "shown", view}), says when pointer or keyboard focus comes in ({type:
 *  "entered"}) and when both are elsewhere ({type: "left"}), and answers Python's
 *  {type: "away?"} with {type: "away", view} only if it is still left when the question
 *  arrives. So a "left" that reaches a busy kernel after the person came back is not
 *  taken as the last word: Python asks first, and a view in use does not answer. Python
 *  asks after each cell that changed the widget too; a view in use then marks the update
 *  owed, and its "left" brings it. While an update may still come (and rebuild the view),
 *  root.dataset.savedPicture says so ("owed", or "asking" until Python answers "saved").
 *  Inside an Explorer (class cw-explorer) "the widget" is the whole Explorer. */
export function reportLeaving(model, root) {
  const view = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  let away = true;
  const scope = () => root.closest(".cw-explorer") || root;
  const inUse = () => {
    const node = scope();
    return node.matches(":hover") || node.contains(document.activeElement);
  };
  const enter = (event) => {
    if (!away || !root.isConnected || !scope().contains(event.target)) return;
    away = false;
    model.send({ type: "entered", view });
  };
  // While an update of the saved picture may still come (it rebuilds this view), the view
  // says so: data-saved-picture="owed" (asked while in use; the update comes once the
  // person leaves) or "asking" (reported; Python's answer, "saved" or the update, to come).
  const saved = (state) => {
    if (state) root.dataset.savedPicture = state;
    else delete root.dataset.savedPicture;
  };
  const check = () => {
    if (away || (root.isConnected && inUse())) return;
    away = true;
    saved("asking");
    model.send({ type: "left", view });
  };
  const later = () => { if (!away) setTimeout(check, 0); };  // document.activeElement moves after focusout
  const answer = (content) => {
    if (content?.type === "saved") {
      if (root.dataset.savedPicture === "asking") saved(null);
      return;
    }
    if (content?.type !== "away?") return;
    if (!away) check();  // taken out of the page (the notebook redrew it, or scrolled it away)
    if (!away) { saved("owed"); return; }
    saved("asking");
    model.send({ type: "away", view });
  };
  const events = [["pointerover", enter], ["focusin", enter], ["pointerout", later], ["focusout", later]];
  for (const [name, fn] of events) document.addEventListener(name, fn, true);
  model.on("msg:custom", answer);
  model.send({ type: "shown", view });
  // Should the view be redrawn while in use all the same (an update sent just before the
  // person came back), the new view keeps the keyboard.
  const releaseFocus = keepFocusAcrossRedraws(root);
  return () => {
    for (const [name, fn] of events) document.removeEventListener(name, fn, true);
    model.off("msg:custom", answer);
    releaseFocus();
    if (!away) model.send({ type: "left", view });  // a view taken away is in nobody's use
  };
}

/** Keep the keyboard on a view the notebook draws anew. JupyterLab and Notebook redraw a
 *  widget's view when its output is updated (the saved picture brought up to date,
 *  cnn_widgets/widgets/static.py): the old view is taken out of the page, without its
 *  cleanup being called at once, and a new one drawn in its place in the same output
 *  area (anywidget gives each view its own model object, and each widget its own copy of
 *  this module, so the record is kept on the window). A view that had the focus when it
 *  was taken out hands it to the view drawn in its place, if the focus is not in a field
 *  or another widget by then, so the arrow keys go on working. Returns the cleanup. */
export function keepFocusAcrossRedraws(root) {
  const record = () => (window.__cnnWidgetsFocused ??= { root: null, home: null });
  const homeOf = (node) => node.closest(".jp-OutputArea") || node.parentElement?.parentElement || null;
  const focusIn = () => Object.assign(record(), { root, home: homeOf(root) });
  const focusOut = () => setTimeout(() => {
    // Left for something else while still on the page: nothing to hand over.
    if (root.isConnected && !root.contains(document.activeElement) && record().root === root) record().root = null;
  }, 0);
  root.addEventListener("focusin", focusIn);
  root.addEventListener("focusout", focusOut);
  const since = performance.now();
  const takeOver = () => {
    if (performance.now() - since > 5000) return;
    if (!root.isConnected) { requestAnimationFrame(takeOver); return; }
    const { root: previous, home } = record();
    if (!previous || previous === root || home !== homeOf(root)) return;
    if (previous.isConnected) { requestAnimationFrame(takeOver); return; }  // the old view may go after the new one came
    record().root = null;
    const active = document.activeElement;
    const busyElsewhere = active && active !== document.body && !active.contains(root)
      && active.closest("input, textarea, select, [contenteditable], .cm-editor, .cw-widget");
    if (!busyElsewhere) root.focus({ preventScroll: true });
  };
  requestAnimationFrame(takeOver);
  return () => {
    root.removeEventListener("focusin", focusIn);
    root.removeEventListener("focusout", focusOut);
  };
}

// Pictograms drawn as SVG on a 16x16 grid in the text colour, so they look the same
// whatever fonts the machine has (Debian's default fonts have no pause sign).
const GLYPHS = {
  play: "M4 2.5v11l9.5-5.5z",
  pause: "M3.5 2.5h3.2v11H3.5zM9.3 2.5h3.2v11H9.3z",
  back: "M12 2.5v11L2.5 8z",
  forward: "M4 2.5v11l9.5-5.5z",
  restart: "M8 2.5a5.5 5.5 0 1 1-5.2 3.7l1.7.6A3.7 3.7 0 1 0 8 4.3v2.2L4.6 3.4 8 0.3z",
  arrow: "M1.5 7h9.5V4l4 4-4 4V9H1.5z",
  warning: "M8 1l7.5 13.5h-15zM7.1 6v4.5h1.8V6zM7.1 11.5v1.8h1.8v-1.8z",
};

/** An inline SVG pictogram ("play", "pause", "back", "forward", "restart", "arrow",
 *  "warning") sized to the text around it, hidden from screen readers (the words say it). */
export function glyph(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `cw-glyph cw-glyph-${name}`);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", GLYPHS[name]);
  path.setAttribute("fill", "currentColor");
  path.setAttribute("fill-rule", "evenodd");
  svg.append(path);
  return svg;
}

/** A legend's sample of a chart line, drawn as SVG in the text colour (box-drawing
 *  characters are missing from many fonts): "solid" or "dashed" (a horizontal stroke),
 *  or "marker" (a vertical dashed line, as a chart's marker of one step). */
export function lineKey(kind) {
  const ns = "http://www.w3.org/2000/svg";
  const vertical = kind === "marker";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", vertical ? "0 0 6 12" : "0 0 24 12");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `cw-line-key cw-line-key-${kind}`);
  const line = document.createElementNS(ns, "line");
  const ends = vertical ? { x1: 3, y1: 0, x2: 3, y2: 12 } : { x1: 0, y1: 6, x2: 24, y2: 6 };
  for (const [name, value] of Object.entries(ends)) line.setAttribute(name, String(value));
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", vertical ? "1.5" : "2");
  if (kind !== "solid") line.setAttribute("stroke-dasharray", vertical ? "3 3" : "4 3");
  svg.append(line);
  return svg;
}

/** Put a pictogram and words in a button (or any element): glyphLabel(button, "pause", "pause");
 *  ``after`` puts the pictogram after the words. */
export function glyphLabel(node, name, words, after = false) {
  const text = document.createTextNode(words);
  const icon = glyph(name);
  icon.classList.add(after ? "cw-glyph-after" : "cw-glyph-before");
  node.replaceChildren(...(after ? [text, icon] : [icon, text]));
  node.dataset.glyph = name;
  return node;
}

/** Call fn at most once per `ms`, always with the latest arguments (trailing edge). */
export function throttle(fn, ms) {
  let timer = null, latest = null;
  return (...args) => {
    latest = args;
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(...latest); }, ms);
  };
}

/** The error line every widget shows: readable text, never a stack trace. */
export function errorLine(model) {
  const node = h("div", { class: "cw-error", role: "alert" });
  const update = () => { node.textContent = model.get("error"); node.hidden = !model.get("error"); };
  model.on("change:error", update);
  update();
  node.cleanup = () => model.off("change:error", update);
  return node;
}

/** Run and Stop buttons, a progress bar and a status line for widgets that mix in
 *  cnn_widgets.widgets.worker.RunControls (traits running, progress, status). */
export function runControls(model) {
  const run = h("button", { class: "cw-run", type: "button", text: "Run" });
  const stop = h("button", { class: "cw-stop", type: "button", text: "Stop" });
  const bar = h("progress", { class: "cw-progress", max: "1", value: "0" });
  const status = h("span", { class: "cw-status" });
  run.addEventListener("click", () => model.send({ type: "run" }));
  stop.addEventListener("click", () => model.send({ type: "stop" }));
  const update = () => {
    const running = model.get("running");
    run.disabled = running;
    stop.disabled = !running;
    bar.value = model.get("progress");
    status.textContent = model.get("status");
    node.dataset.running = String(running);
  };
  const node = h("div", { class: "cw-run-controls" }, [run, stop, bar, status]);
  for (const trait of ["running", "progress", "status"]) model.on(`change:${trait}`, update);
  update();
  node.cleanup = () => { for (const trait of ["running", "progress", "status"]) model.off(`change:${trait}`, update); };
  return node;
}

/** The image picker FeatureMaps, DeepDream and GradCAM share: a sample <select>
 *  (showing "(your image)" after an upload) and an "upload…" button that sends the
 *  file's bytes to Python as {type: "upload", name} with one buffer. */
export function imagePicker(model, title = "upload an image of your own") {
  // Options are names, or {name, label} where a label says a sample is unlike the model's pictures.
  const sample = choiceControl(model, "image", "sample", "sample_options", (option) => option.label ?? option);
  const select = sample.querySelector("select");
  const markCustom = () => {
    if (model.get("sample")) return;
    if (!select.querySelector('option[value=""]')) select.prepend(h("option", { value: "", text: "(your image)" }));
    select.value = "";
  };
  const input = h("input", { type: "file", accept: "image/*", class: "cw-upload", title });
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const data = await file.arrayBuffer();
    model.send({ type: "upload", name: file.name }, undefined, [data]);
    input.value = "";
  });
  const upload = h("label", { class: "cw-upload-button", title }, [h("span", { text: "upload…" }), input]);
  model.on("change:sample", markCustom);
  markCustom();
  return { sample, upload, cleanup: () => { sample.cleanup(); model.off("change:sample", markCustom); } };
}
