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
