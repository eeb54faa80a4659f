// The model behind the offline pages (js/saved_model.js): saved state in, anywidget's
// model interface out.
import { describe, expect, test, vi } from "vitest";
import { SavedModel, decode } from "../saved_model.js";

describe("decode", () => {
  test("turns {$bytes: base64} into DataViews anywhere in the state and leaves the rest", () => {
    const state = decode({ layer: "block1_conv1", frames_png: [{ $bytes: btoa("\x89PNG") }, { $bytes: "" }], layout: { n: 4, tags: ["a"] }, none: null });
    expect(state.layer).toBe("block1_conv1");
    expect(state.frames_png[0]).toBeInstanceOf(DataView);
    expect([...new Uint8Array(state.frames_png[0].buffer)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(state.frames_png[1].byteLength).toBe(0);
    expect(state.layout).toEqual({ n: 4, tags: ["a"] });
    expect(state.none).toBe(null);
  });
});

describe("SavedModel", () => {
  test("set tells the listeners of that trait, only when the value changes", () => {
    const model = new SavedModel({ filter_index: 0, layer: "a" });
    const filter = vi.fn(), layer = vi.fn();
    model.on("change:filter_index", filter);
    model.on("change:layer", layer);
    model.set("filter_index", 3);
    model.set("filter_index", 3);
    expect(model.get("filter_index")).toBe(3);
    expect(filter).toHaveBeenCalledTimes(1);
    expect(layer).not.toHaveBeenCalled();
  });

  test("off removes one listener, all of an event, or all", () => {
    const model = new SavedModel({ a: 0, b: 0 });
    const first = vi.fn(), second = vi.fn(), other = vi.fn();
    model.on("change:a", first);
    model.on("change:a", second);
    model.on("change:b", other);
    model.off("change:a", first);
    model.set("a", 1);
    expect([first.mock.calls.length, second.mock.calls.length]).toEqual([0, 1]);
    model.off("change:a");
    model.set("a", 2);
    expect(second).toHaveBeenCalledTimes(1);
    model.off();
    model.set("b", 1);
    expect(other).not.toHaveBeenCalled();
  });

  test("a listener may unsubscribe itself while being called", () => {
    const model = new SavedModel({ a: 0 });
    const later = vi.fn();
    const once = () => model.off("change:a", once);
    model.on("change:a", once);
    model.on("change:a", later);
    model.set("a", 1);
    expect(later).toHaveBeenCalledTimes(1);
  });
});
