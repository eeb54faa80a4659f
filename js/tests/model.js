// A model for the tests: the saved-state model of the offline pages (js/saved_model.js),
// which also records what a widget would send to Python.
import { SavedModel } from "../saved_model.js";

export function recordingModel(state) {
  const model = new SavedModel(state);
  model.saves = 0;
  model.sent = [];
  model.save_changes = () => { model.saves += 1; };
  model.send = (content, callbacks, buffers) => { model.sent.push({ content, buffers }); };
  return model;
}

/** Type a value into an input or select as a person would: set it, then fire the event. */
export function enter(control, value, event = "change") {
  control.value = value;
  control.dispatchEvent(new Event(event, { bubbles: true }));
}
