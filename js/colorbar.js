// A colorbar with numbers, drawn from a render.colorbar_scale dict that Python syncs
// (grid_colorbar, tile_colorbar, GradCAM's colorbars): the colour ramp, a number at each
// tick, a line at zero for a diverging colormap, and a note saying what the scale is.
// Hidden while the dict is empty.
import { h } from "./common.js";

const TICK_GAP = 6; // px between two numbers, as render.colorbar.TICK_GAP in saved pictures

/**
 * Which tick numbers to show so that none runs into another ("0.030.0366"), as render.readable_ticks
 * does for saved pictures: both ends first, then zero, then the others left to right, each kept only
 * if it stays `gap` px clear of every kept one. `boxes`: [left, right] of each number; returns their indices.
 */
export function readableTicks(boxes, zero = [], gap = TICK_GAP) {
  const count = boxes.length;
  const order = new Set([0, count - 1, ...zero, ...boxes.keys()]);
  const kept = [];
  for (const i of order) {
    if (i < 0 || i >= count) continue;
    const [left, right] = boxes[i];
    if (kept.every((j) => right + gap <= boxes[j][0] || boxes[j][1] + gap <= left)) kept.push(i);
  }
  return new Set(kept);
}

/** A colorbar element; node.draw(scale) shows a render.colorbar_scale dict ({} hides it). */
export function colorbarNode(trait = "") {
  const ramp = h("div", { class: "cw-colorbar-ramp" });
  const ticks = h("div", { class: "cw-colorbar-ticks" });
  const note = h("div", { class: "cw-colorbar-note" });
  const node = h("div", { class: "cw-colorbar", "data-trait": trait || undefined }, [ramp, ticks, note]);
  node.draw = (scale = {}) => {
    node.hidden = !scale.ticks;
    if (!scale.ticks) return;
    ramp.style.background = `linear-gradient(to right, ${scale.stops.join(", ")})`;
    const marks = [];
    if (scale.zero !== null && scale.zero !== undefined) {
      marks.push(h("div", { class: "cw-colorbar-zero", title: "zero" }));
      marks[0].style.left = `${100 * scale.zero}%`;
    }
    ramp.replaceChildren(...marks);
    ticks.replaceChildren(...scale.ticks.map((tick) => {
      const label = h("span", { class: "cw-colorbar-tick", text: tick.label });
      label.dataset.value = String(tick.value);
      label.style.left = `${100 * tick.at}%`;
      label.style.transform = `translateX(${tick.at <= 0 ? 0 : tick.at >= 1 ? -100 : -50}%)`;
      return label;
    }));
    note.textContent = scale.note || "";
    node.dataset.low = String(scale.low);
    node.dataset.high = String(scale.high);
    fit();
  };
  // Numbers that would run together are hidden (kept in the page as text), measured once laid out:
  // now, and whenever the bar gets its width (a tab shown later, a narrower column).
  const fit = () => {
    const labels = [...ticks.children];
    if (!labels.length || !ticks.getBoundingClientRect().width) return;
    const boxes = labels.map((label) => { const box = label.getBoundingClientRect(); return [box.left, box.right]; });
    const zero = labels.flatMap((label, i) => (Number(label.dataset.value) === 0 ? [i] : []));
    const shown = readableTicks(boxes, zero);
    labels.forEach((label, i) => { label.style.visibility = shown.has(i) ? "" : "hidden"; });
  };
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(fit).observe(ticks);
  return node;
}

/** A colorbar that follows a trait holding one render.colorbar_scale dict. */
export function colorbar(model, trait) {
  const node = colorbarNode(trait);
  const sync = () => node.draw(model.get(trait) || {});
  model.on(`change:${trait}`, sync);
  sync();
  node.cleanup = () => model.off(`change:${trait}`, sync);
  return node;
}
