// A colorbar with numbers, drawn from a render.colorbar_scale dict that Python syncs
// (grid_colorbar, tile_colorbar, GradCAM's colorbars): the colour ramp, a number at each
// tick, a line at zero for a diverging colormap, and a note saying what the scale is.
// Hidden while the dict is empty.
import { h } from "./common.js";

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
  };
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
