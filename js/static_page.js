// Shows widgets saved by cnn_widgets.export in a page without Jupyter: the same
// frontend modules as in the notebook, rendered on a model that holds the saved
// state. Nothing is fetched: each widget's module, stylesheet and pictures are
// in the page. Controls that would need Python are disabled; those marked
// data-client (the DeepDream frame player) work as in the notebook.
// Built into a classic script (cnn_widgets/bundle/static_page.js) that the page inlines.
import { SavedModel, decode } from "./saved_model.js";

function install() {
  const styled = new Set();

  async function mount(node) {
    const spec = JSON.parse(node.querySelector('script[type="application/vnd.cnn-widgets.static+json"]').textContent);
    if (spec.css && !styled.has(spec.css)) {
      styled.add(spec.css);
      document.head.append(Object.assign(document.createElement("style"), { textContent: spec.css }));
    }
    const url = URL.createObjectURL(new Blob([spec.esm], { type: "text/javascript" }));
    let widget;
    try {
      widget = (await import(url)).default;
    } finally {
      URL.revokeObjectURL(url);
    }
    if (typeof widget === "function") widget = await widget();
    const el = node.querySelector(".cw-static-view");
    await widget.render({ model: new SavedModel(decode(spec.state)), el });
    const live = (target) => target instanceof Element && target.closest("[data-client]");
    for (const control of el.querySelectorAll("select, input, button, textarea")) {
      if (!live(control)) { control.disabled = true; control.title = "needs the notebook's Python kernel"; }
    }
    for (const type of ["click", "keydown", "change", "input", "dragstart"]) {
      el.addEventListener(type, (event) => {
        if (!live(event.target)) { event.stopPropagation(); event.preventDefault(); }
      }, true);
    }
    node.dataset.rendered = "true";
    const fallback = node.querySelector(".cw-static-fallback");
    if (fallback) fallback.remove();
  }

  const mountAll = () => {
    for (const node of document.querySelectorAll(".cw-static:not([data-rendered])")) {
      node.dataset.rendered = "pending";
      mount(node).catch((error) => {
        node.dataset.rendered = "failed";
        console.error("cnn-widgets: could not show a saved widget", error);
      });
    }
  };
  window.cnnWidgetsStatic = { mount, mountAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
}

if (!window.cnnWidgetsStatic) install();
else if (document.readyState !== "loading") window.cnnWidgetsStatic.mountAll();  // loaded already (one copy per widget in an exported notebook)
