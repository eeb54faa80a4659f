// Shows widgets saved by cnn_widgets.export in a page without Jupyter: the same
// frontend modules as in the notebook, rendered on a model that holds the saved
// state. Nothing is fetched: each widget's module, stylesheet and pictures are
// in the page. Controls that would need Python are disabled; those marked
// data-client (the DeepDream frame player) work as in the notebook.
(function () {
  if (window.cnnWidgetsStatic) {  // loaded already (one copy per widget in an exported notebook)
    if (document.readyState !== "loading") window.cnnWidgetsStatic.mountAll();
    return;
  }

  // Saved bytes travel as {"$bytes": base64}; the widget modules expect DataViews.
  function decode(value) {
    if (Array.isArray(value)) return value.map(decode);
    if (value && typeof value === "object") {
      if (typeof value.$bytes === "string") {
        const binary = atob(value.$bytes);
        const bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
        return new DataView(bytes.buffer);
      }
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, decode(item)]));
    }
    return value;
  }

  // The part of anywidget's model interface the widget modules use.
  class SavedModel {
    constructor(state) { this.state = state; this.listeners = new Map(); }
    get(name) { return this.state[name]; }
    set(name, value) {
      if (this.state[name] === value) return;
      this.state[name] = value;
      for (const callback of [...(this.listeners.get(`change:${name}`) || [])]) callback();
    }
    on(event, callback) {
      if (!this.listeners.has(event)) this.listeners.set(event, new Set());
      this.listeners.get(event).add(callback);
    }
    off(event, callback) {
      if (!event) { this.listeners.clear(); return; }
      const set = this.listeners.get(event);
      if (set) callback ? set.delete(callback) : set.clear();
    }
    save_changes() {}
    send() {}
  }

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
})();
