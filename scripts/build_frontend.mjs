// Builds the frontend that ships inside the package: esbuild bundles each widget's
// entry module in js/ (with the helpers it imports) into one ES module and one
// stylesheet in cnn_widgets/bundle/, and js/static_page.js into a classic script for
// the offline HTML pages. The scripts carry inline source maps without the sources'
// text (a third of the size: they travel in every saved notebook and exported page),
// so stack traces point at the files and lines in js/.
//
//   npm run build     build once, from scratch (scripts/setup.sh does this)
//   npm run watch     rebuild on every change, for anywidget's hot reload (README)
//   --quiet           print warnings and errors only
import * as esbuild from "esbuild";
import { rmSync } from "node:fs";

const outdir = "cnn_widgets/bundle";
const banner = "/* cnn-widgets frontend, built by esbuild from js/ (scripts/build_frontend.mjs): edit the sources there */";
const widgets = ["filter_weights", "feature_maps", "maximization", "deepdream", "gradcam", "convolution", "monitor", "examples", "unit", "explorer"];
// A widget's stylesheet is js/<widget>.css when it has one (which @imports widgets.css), else widgets.css.
const stylesheets = { deepdream: "js/deepdream.css", gradcam: "js/gradcam.css", convolution: "js/convolution.css", monitor: "js/monitor.css", examples: "js/examples.css", unit: "js/unit.css", explorer: "js/explorer.css" };
const common = { bundle: true, outdir, banner: { js: banner, css: banner }, logLevel: process.argv.includes("--quiet") ? "warning" : "info" };
const builds = [
  // One module per widget: anywidget loads and evaluates each widget's module on its own.
  { ...common, format: "esm", sourcemap: "inline", sourcesContent: false, entryPoints: widgets.map((name) => `js/${name}.js`) },
  // Stylesheets throw no errors; a source map would only double their size.
  { ...common, entryPoints: Object.fromEntries(widgets.map((name) => [name, stylesheets[name] || "js/widgets.css"])) },
  // The offline pages' loader is inlined into a <script> of its own (cnn_widgets/export.py).
  { ...common, format: "iife", sourcemap: "inline", sourcesContent: false, entryPoints: ["js/static_page.js"] },
];

if (process.argv.includes("--watch")) {
  // The files stay in place: anywidget stops following a file that disappears.
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  rmSync(outdir, { recursive: true, force: true });  // nothing stale survives a build
  for (const options of builds) await esbuild.build(options);
}
