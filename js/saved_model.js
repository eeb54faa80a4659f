// A widget's saved state as the model its frontend module renders from, in pages
// without Jupyter (js/static_page.js): the part of anywidget's model interface the
// widget modules use, holding the state cnn_widgets/export.py put in the page.

/** Saved bytes travel as {"$bytes": base64}; the widget modules expect DataViews. */
export function decode(value) {
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

/** get/set/on/off like anywidget's model; nothing is sent anywhere (there is no Python). */
export class SavedModel {
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
