// A small kernel's weights written out, one table per input channel (or colour), each
// cell on the colour it has in the enlarged picture; drawn from tile_numbers, the
// render.kernel_cells tables Python syncs ([] for kernels over 5x5: nothing shown).
import { h } from "./common.js";

/** A weight as a person reads it: three significant digits, no exponent for usual weights. */
export function formatWeight(value) {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 0.001 && magnitude < 1000) return Number(value.toPrecision(3)).toString();
  return value.toExponential(1);
}

/** Black or white text, whichever has the higher WCAG contrast on a "#rrggbb" background
 * (relative luminance of the linearized sRGB channels; either choice is then at least 4.58:1). */
export function textColorOn(background) {
  const linear = (channel) => (channel <= 0.04045 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4);
  const [r, g, b] = [1, 3, 5].map((at) => linear(parseInt(background.slice(at, at + 2), 16) / 255));
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000" : "#fff";
}

export function kernelNumbers(model, trait = "tile_numbers") {
  const node = h("div", { class: "cw-kernel-numbers", "data-trait": trait });
  const sync = () => {
    const tables = model.get(trait) || [];
    node.hidden = tables.length === 0;
    node.replaceChildren(...tables.map(({ label, values, colors }) => h("figure", { class: "cw-kernel" }, [
      h("figcaption", { text: label }),
      h("table", {}, values.map((row, r) => h("tr", {}, row.map((value, c) => {
        const cell = h("td", { text: formatWeight(value) });
        cell.dataset.value = String(value);
        cell.style.background = colors[r][c];
        cell.style.color = textColorOn(colors[r][c]);
        return cell;
      })))),
    ])));
  };
  model.on(`change:${trait}`, sync);
  sync();
  node.cleanup = () => model.off(`change:${trait}`, sync);
  return node;
}
