// DeepDream: layer, filter and octave settings, an image picker, Run/Stop with
// progress, the current dream frame shown big with the original beside it at the
// same size, and a frame player that cycles through the dream loop in the browser
// (Python is told only where it stops).
import { bindImage, choiceControl, errorLine, glyphLabel, h, imagePicker, imageURL, numberControl, reportLeaving, runControls, throttle } from "./common.js";

const PLAY_FPS = 8;

/** The filter to dream on: the whole layer (-1) or one of its filters. */
function filterControl(model) {
  const select = h("select", { "data-trait": "filter", title: "dream on the whole layer or on one filter" });
  const fill = () => {
    const options = [h("option", { value: "-1", text: "whole layer" })];
    for (let i = 0; i < model.get("filter_count"); i += 1) options.push(h("option", { value: String(i), text: `filter ${i}` }));
    select.replaceChildren(...options);
    select.value = String(model.get("filter"));
  };
  const sync = () => { select.value = String(model.get("filter")); };
  select.addEventListener("change", () => { model.set("filter", Number(select.value)); model.save_changes(); });
  model.on("change:filter_count", fill);
  model.on("change:filter", sync);
  fill();
  const node = h("label", { class: "cw-control" }, [h("span", { text: "filter" }), select]);
  node.cleanup = () => { model.off("change:filter_count", fill); model.off("change:filter", sync); };
  return node;
}

function render({ model, el }) {
  const cleanups = [];
  const on = (event, fn) => { model.on(event, fn); cleanups.push(() => model.off(event, fn)); };

  // JupyterLab must not treat our arrow keys as its own shortcuts (cell navigation).
  const root = h("div", { class: "cw-widget cw-deepdream", tabindex: "0", "data-lm-suppress-shortcuts": "true" });
  const title = h("div", { class: "cw-title" });

  // -- controls ---------------------------------------------------------------------
  const layerControl = choiceControl(model, "layer", "layer", "layer_options",
    (o) => `${o.name} · ${o.channels} × ${o.shape.slice(1).join("×")}`);
  const picker = imagePicker(model, "dream on an image of your own");
  cleanups.push(picker.cleanup);
  const choices = [layerControl, filterControl(model), picker.sample];
  const numbers = [
    numberControl(model, "octaves", "octaves", { min: "1", max: "12", step: "1" }),
    numberControl(model, "octave scale", "octave_scale", { min: "1.05", max: "4", step: "0.05" }, false),
    numberControl(model, "steps / octave", "steps", { min: "1", max: "10000", step: "1" }),
    numberControl(model, "step size", "step_size", { min: "0.001", max: "1", step: "0.001" }, false),
    numberControl(model, "frames", "frames", { min: "1", max: "120", step: "1" }),
    numberControl(model, "dream size", "dream_size", { min: "0", max: "512", step: "4", title: "a photo whose shorter side is smaller is enlarged to this before dreaming (0: never)" }),
    numberControl(model, "zoom", "zoom", { min: "1", max: "2", step: "0.01" }, false),
    numberControl(model, "seed", "seed", { min: "0", step: "1" }),
  ];
  for (const control of [...choices, ...numbers]) cleanups.push(control.cleanup);
  const controls = h("div", { class: "cw-controls" }, [...choices, picker.upload]);
  const settings = h("div", { class: "cw-controls cw-dream-settings" }, numbers);
  const run = runControls(model);
  cleanups.push(run.cleanup);

  // -- the frame and its player ---------------------------------------------------------
  const frame = h("img", { class: "cw-frame", alt: "dream frame" });
  const play = glyphLabel(h("button", { class: "cw-play", type: "button", title: "play the dream loop", "data-client": "true" }), "play", "Play");
  const slider = h("input", { type: "range", class: "cw-frame-slider", min: "0", max: "0", step: "1", value: "0", "data-trait": "frame_index", title: "frame", "data-client": "true" });
  const frameLabel = h("span", { class: "cw-frame-label" });
  const player = h("div", { class: "cw-player" }, [play, slider, frameLabel]);
  const caption = h("figcaption", { class: "cw-caption" });
  const view = h("figure", { class: "cw-dream-view" }, [h("div", { class: "cw-section-title", text: "Dream" }), frame, player, caption]);

  // The original beside the dream, at the same size (photo_png is the photo resized as it is dreamed on).
  const original = h("img", { class: "cw-original", alt: "the original photo, at the dream's size" });
  const side = h("figure", { class: "cw-dream-side" }, [h("div", { class: "cw-section-title", text: "Original" }), original]);

  const error = errorLine(model);
  cleanups.push(error.cleanup, reportLeaving(model, root));
  root.append(title, controls, settings, run, h("div", { class: "cw-dream-body" }, [view, side]), error);
  el.append(root);

  // Frames arrive as a list of PNG bytes (binary buffers); one object URL per frame.
  let urls = [];
  let photoURL = "";
  let shown = 0;
  let timer = null;
  const count = () => urls.length;
  frame.addEventListener("load", () => { root.dataset.paints = String(Number(root.dataset.paints || 0) + 1); });

  const show = (index) => {
    const n = count();
    shown = n ? Math.max(0, Math.min(n - 1, index)) : 0;
    const src = n ? urls[shown] : photoURL;
    if (src && frame.getAttribute("src") !== src) frame.src = src;
    if (!src) frame.removeAttribute("src");
    frame.alt = n ? `dream frame ${shown + 1} of ${n}` : "the photo, before dreaming";
    slider.value = String(shown);
    frameLabel.textContent = n ? `frame ${shown + 1} / ${n}` : "no frames yet";
    root.dataset.frameIndex = String(shown);
  };
  const sendNow = (index) => { if (model.get("frame_index") !== index) { model.set("frame_index", index); model.save_changes(); } };
  const sendIndex = throttle(sendNow, 50);
  const pause = () => {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    glyphLabel(play, "play", "Play");
    root.dataset.playing = "false";
    sendNow(shown);
  };
  const start = () => {
    if (count() < 2 || timer !== null) return;
    timer = setInterval(() => show((shown + 1) % count()), 1000 / PLAY_FPS);
    glyphLabel(play, "pause", "Pause");
    root.dataset.playing = "true";
  };
  play.addEventListener("click", () => (timer === null ? start() : pause()));
  slider.addEventListener("input", () => { pause(); show(Number(slider.value)); sendIndex(shown); });
  slider.addEventListener("change", () => sendNow(shown));  // released: Python hears the final frame at once

  const refreshPlayer = () => {
    const n = count();
    slider.max = String(Math.max(0, n - 1));
    slider.disabled = n < 2;
    play.disabled = n < 2;
    root.dataset.frameCount = String(n);
    if (n < 2) pause();
    show(timer === null ? model.get("frame_index") : shown);
  };
  const syncFrames = () => {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = model.get("frames_png").map((data) => imageURL(data, null));
    refreshPlayer();
  };
  // During a run Python streams each new frame as a message ({type: "frames", start}
  // plus one buffer per frame) and sets frames_png once at the end; a view that missed
  // frames asks for the whole list.
  const onMessage = (content, buffers) => {
    if (!content || content.type !== "frames") return;
    if (content.start !== urls.length) { model.send({ type: "resync" }); return; }
    for (const data of buffers || []) urls.push(imageURL(data, null));
    refreshPlayer();
  };
  const syncIndex = () => { if (timer === null) show(model.get("frame_index")); };
  const syncPhoto = () => {
    photoURL = imageURL(model.get("photo_png"), photoURL);
    if (!count()) show(0);
  };
  const syncText = () => {
    title.textContent = model.get("title");
    caption.textContent = model.get("caption");
  };
  const syncRunning = () => { root.dataset.running = String(model.get("running")); };

  on("change:frames_png", syncFrames);
  on("msg:custom", onMessage);
  on("change:frame_index", syncIndex);
  on("change:photo_png", syncPhoto);
  cleanups.push(bindImage(model, "photo_png", original));
  on("change:title", syncText);
  on("change:caption", syncText);
  on("change:running", syncRunning);
  syncPhoto();
  syncFrames();
  syncText();
  syncRunning();
  root.dataset.playing = "false";
  if (model.get("running")) model.send({ type: "resync" });  // opened mid-run: fetch the streamed frames

  // Left and right step through the frames.
  root.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement) return;
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    event.stopPropagation();
    pause();
    show(shown + (event.key === "ArrowRight" ? 1 : -1));
    sendIndex(shown);
  });

  return () => {
    if (timer !== null) clearInterval(timer);
    cleanups.forEach((fn) => fn());
    for (const url of urls) URL.revokeObjectURL(url);
    if (photoURL) URL.revokeObjectURL(photoURL);
  };
}

export default { render };
