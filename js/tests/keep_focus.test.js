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

  it("leave no pictographic characters in any view's text or style", async () => {
    const { readFileSync, readdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = join(__dirname, "..");
    // Arrows, box drawing, block elements, geometric shapes, dingbats, media-control signs
    // and emoji: missing from many fonts (Debian's defaults draw some as empty boxes).
    const pictographs = /[\u2190-\u21ff\u2300-\u23ff\u2500-\u27bf\u2b00-\u2bff\u{1f300}-\u{1faff}]/u;
    const names = readdirSync(dir).filter((name) => /\.(js|css)$/.test(name));
    expect(names).toEqual(expect.arrayContaining(["common.js", "gradcam.js", "monitor.js", "tile_viewer.js", "widgets.css"]));
    for (const name of names) {
      const text = readFileSync(join(dir, name), "utf8").replace(/\/\*[\s\S]*?\*\//g, "");  // comments are not shown
      const code = text.split("\n").filter((line) => !line.trim().startsWith("//"));
      const found = code.filter((line) => pictographs.test(line));
      expect(found, name).toEqual([]);
    }
  });

  it("draw legends' line samples as SVG strokes", async () => {
    const { lineKey } = await import("../common.js");
    const dashed = lineKey("dashed").querySelector("line");
    expect(dashed.getAttribute("stroke")).toBe("currentColor");
    expect(dashed.getAttribute("stroke-dasharray")).toBe("4 3");
    expect(lineKey("solid").querySelector("line").hasAttribute("stroke-dasharray")).toBe(false);
    const marker = lineKey("marker").querySelector("line");
    expect(marker.getAttribute("x1")).toBe(marker.getAttribute("x2"));  // vertical
  });
});
