// A view the notebook draws anew takes the keyboard back from the view it replaces,
// unless the person has gone to a field meanwhile.
import { describe, expect, it } from "vitest";
import { h, keepFocusAcrossRedraws } from "../common.js";

const frames = (count = 3) => new Promise((resolve) => {
  const step = (left) => (left ? requestAnimationFrame(() => step(left - 1)) : resolve());
  step(count);
});

function outputArea() {
  const home = h("div", { class: "jp-OutputArea" });
  document.body.append(home);
  return home;
}

function view(home) {
  const root = h("div", { class: "cw-widget", tabindex: "0" });
  home.append(h("div", {}, [root]));
  return { root, cleanup: keepFocusAcrossRedraws(root) };
}

describe("keepFocusAcrossRedraws", () => {
  it("hands the focus to the view drawn in place of a focused one", async () => {
    const home = outputArea();
    const old = view(home);
    old.root.focus();
    expect(document.activeElement).toBe(old.root);
    old.root.parentElement.remove();  // the notebook takes the old view out, then draws a new one
    const fresh = view(home);
    await frames();
    expect(document.activeElement).toBe(fresh.root);
    old.cleanup(); fresh.cleanup(); home.remove();
  });

  it("leaves the focus where the person put it", async () => {
    const home = outputArea();
    const old = view(home);
    old.root.focus();
    const field = h("input", { type: "text" });
    document.body.append(field);
    field.focus();  // the person went to a field: the old view no longer has the focus
    await frames();
    old.root.parentElement.remove();
    const fresh = view(home);
    await frames();
    expect(document.activeElement).toBe(field);
    old.cleanup(); fresh.cleanup(); home.remove(); field.remove();
  });
});

describe("glyphs", () => {
  it("are SVG shapes in the text colour, not characters a font may lack", async () => {
    const { glyph, glyphLabel } = await import("../common.js");
    const button = glyphLabel(document.createElement("button"), "pause", "pause");
    const svg = button.querySelector("svg.cw-glyph-pause");
    expect(svg).not.toBeNull();
    expect(svg.querySelector("path").getAttribute("fill")).toBe("currentColor");
    expect(button.textContent).toBe("pause");
    expect(glyph("arrow").getAttribute("aria-hidden")).toBe("true");
  });

  it("leave no pictographic characters in the views' text", async () => {
    const { readFileSync, readdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = join(__dirname, "..");
    // Arrows, geometric shapes, dingbats, media-control signs and emoji: missing from many fonts.
    const pictographs = /[\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2b00-\u2bff\u{1f300}-\u{1faff}]/u;
    for (const name of ["tile_viewer.js", "convolution.js", "deepdream.js", "feature_maps.js", "filter_weights.js", "kernel_numbers.js", "colorbar.js"]) {
      const code = readFileSync(join(dir, name), "utf8").split("\n").filter((line) => !line.trim().startsWith("//"));
      const found = code.filter((line) => pictographs.test(line));
      expect(found, name).toEqual([]);
    }
  });
});
