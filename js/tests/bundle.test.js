// @vitest-environment node
// The built frontend (cnn_widgets/bundle/, `npm run build`): each widget's module stands
// alone, and its inline source map sends stack traces to the right file and line in js/.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, test } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url).href);
const bundle = (name) => `${root}cnn_widgets/bundle/${name}`;
const widgets = ["filter_weights", "feature_maps", "maximization", "deepdream", "gradcam", "convolution", "monitor", "examples", "unit", "explorer"];
const lineOf = (file, text) => readFileSync(`${root}js/${file}`, "utf8").split("\n").findIndex((line) => line.includes(text)) + 1;

// Runs a module script in a fresh Node with source maps on, as the browser's developer tools
// read them; prints what it logs.
const runNode = (script) => execFileSync(process.execPath, ["--enable-source-maps", "--input-type=module", "-e", script], { encoding: "utf8" });

describe.each(widgets)("%s", (widget) => {
  test("is built (npm run build), and its module imports nothing: anywidget loads it from a blob: URL", () => {
    expect(existsSync(bundle(`${widget}.js`)), "run `npm run build` first").toBe(true);
    const code = readFileSync(bundle(`${widget}.js`), "utf8");
    expect(code).not.toMatch(/^\s*import\b|\bimport\s*\(|\brequire\s*\(/m);
    expect(code).toMatch(/\/\/# sourceMappingURL=data:application\/json;base64,/);
    expect(readFileSync(bundle(`${widget}.css`), "utf8")).toContain(".cw-widget {");
  });

  test("exports a render function", () => {
    const out = runNode(`const widget = (await import(${JSON.stringify(pathToFileURL(bundle(`${widget}.js`)).href)})).default;
      console.log(typeof widget.render);`);
    expect(out.trim()).toBe("function");
  });
});

test("a stack trace from a widget's module names the source files and lines in js/", () => {
  // Without a DOM, the first element the view creates fails: in h() of js/common.js,
  // called from choiceControl, called from the FilterWeights render function.
  const stack = runNode(`const widget = (await import(${JSON.stringify(pathToFileURL(bundle("filter_weights.js")).href)})).default;
    try { widget.render({ model: {}, el: {} }); } catch (error) { console.log(error.stack); }`);
  const frames = stack.split("\n").filter((line) => line.trim().startsWith("at ")).slice(0, 3);
  expect(frames[0]).toContain(`js/common.js:${lineOf("common.js", "document.createElement(tag)")}:`);
  expect(frames[1]).toContain(`js/common.js:${lineOf("common.js", 'const select = h("select"')}:`);
  expect(frames[2]).toContain(`js/filter_weights.js:${lineOf("filter_weights.js", "return tileViewer(")}:`);
});

test("the offline pages' script is a classic script with its source map", () => {
  const code = readFileSync(bundle("static_page.js"), "utf8");
  expect(code).not.toMatch(/^\s*(import|export)\b/m);
  expect(code).toContain("window.cnnWidgetsStatic = { mount, mountAll }");
  expect(code).toMatch(/\/\/# sourceMappingURL=data:application\/json;base64,/);
});
