// The shared helpers of every widget (js/common.js), in jsdom.
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import {
  bindImage, choiceControl, errorLine, h, imagePicker, imageType, imageURL, numberControl, reportLeaving, runControls, throttle,
} from "../common.js";
import { enter, recordingModel } from "./model.js";

describe("h", () => {
  test("builds an element with attributes, text, listeners and children, skipping empty ones", () => {
    const clicked = vi.fn();
    const node = h("button", { class: "cw-run", text: "Run", title: "go", onclick: clicked, hidden: null, "data-x": undefined },
      [h("span", { text: "a" }), null, false, "b"]);
    expect(node.tagName).toBe("BUTTON");
    expect(node.className).toBe("cw-run");
    expect(node.getAttribute("title")).toBe("go");
    expect(node.hasAttribute("hidden") || node.hasAttribute("data-x") || node.hasAttribute("onclick")).toBe(false);
    expect(node.textContent).toBe("Runab");
    node.click();
    expect(clicked).toHaveBeenCalledTimes(1);
  });
});

describe("throttle", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  test("calls at most once per interval, with the latest arguments", () => {
    const calls = [];
    const send = throttle((value) => calls.push(value), 25);
    send(1); send(2); send(3);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(25);
    expect(calls).toEqual([3]);
    send(4);
    vi.advanceTimersByTime(10);
    send(5);
    vi.advanceTimersByTime(15);
    expect(calls).toEqual([3, 5]);
    vi.advanceTimersByTime(100);
    expect(calls).toEqual([3, 5]);
  });
});

describe("images", () => {
  let blobs, revoked;
  beforeEach(() => {
    blobs = [];
    revoked = [];
    vi.spyOn(URL, "createObjectURL").mockImplementation((blob) => { blobs.push(blob); return `blob:test/${blobs.length}`; });
    vi.spyOn(URL, "revokeObjectURL").mockImplementation((url) => { revoked.push(url); });
  });
  afterEach(() => vi.restoreAllMocks());

  test("imageURL turns exactly the bytes a DataView covers into a PNG blob URL", async () => {
    const buffer = new Uint8Array([9, 9, 1, 2, 3, 9]).buffer;
    const url = imageURL(new DataView(buffer, 2, 3), null);
    expect(url).toBe("blob:test/1");
    expect(blobs[0].type).toBe("image/png");
    expect([...new Uint8Array(await blobs[0].arrayBuffer())]).toEqual([1, 2, 3]);
  });

  test("imageURL labels the bytes with the format the kernel chose, read from their signature", () => {
    const webp = new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 ");
    imageURL(webp.buffer, null);
    expect(blobs[0].type).toBe("image/webp");
    expect(imageType(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10]))).toBe("image/png");
    expect(imageType(new TextEncoder().encode("RIFF\0\0\0\0WAVEfmt "))).toBe("image/png");
  });

  test("imageURL revokes the previous URL and gives '' for no bytes", () => {
    expect(imageURL(new DataView(new ArrayBuffer(0)), "blob:old")).toBe("");
    expect(revoked).toEqual(["blob:old"]);
    expect(imageURL(new Uint8Array([1]).buffer, null, "image/webp")).toBe("blob:test/1");
    expect(blobs[0].type).toBe("image/webp");
  });

  test("bindImage follows the trait, shows nothing for empty bytes, and releases its URL", () => {
    const model = recordingModel({ grid_png: new DataView(new Uint8Array([1]).buffer) });
    const img = document.createElement("img");
    const release = bindImage(model, "grid_png", img);
    expect(img.getAttribute("src")).toBe("blob:test/1");
    model.set("grid_png", new DataView(new Uint8Array([2]).buffer));
    expect(img.getAttribute("src")).toBe("blob:test/2");
    expect(revoked).toEqual(["blob:test/1"]);
    model.set("grid_png", new DataView(new ArrayBuffer(0)));
    expect(img.hasAttribute("src")).toBe(false);
    model.set("grid_png", new DataView(new Uint8Array([3]).buffer));
    release();
    expect(revoked.at(-1)).toBe("blob:test/3");
    model.set("grid_png", new DataView(new Uint8Array([4]).buffer));
    expect(img.getAttribute("src")).toBe("blob:test/3");  // released: no longer follows
  });

  test("bindImage tells when the new picture is painted", async () => {
    const model = recordingModel({ tile_png: new DataView(new Uint8Array([1]).buffer) });
    const img = document.createElement("img");
    img.decode = () => Promise.resolve();
    const painted = vi.fn();
    bindImage(model, "tile_png", img, painted);
    await vi.waitFor(() => expect(painted).toHaveBeenCalledTimes(1));
  });
});

describe("numberControl", () => {
  const control = (model, integer = true) => {
    const node = numberControl(model, "steps", "steps", { min: "1", max: "4096" }, integer);
    return { node, input: node.querySelector("input") };
  };

  test("shows the trait under its label and follows it", () => {
    const model = recordingModel({ steps: 64 });
    const { node, input } = control(model);
    expect(node.querySelector("span").textContent).toBe("steps");
    expect(input.value).toBe("64");
    expect(input.dataset.trait).toBe("steps");
    model.set("steps", 128);
    expect(input.value).toBe("128");
  });

  test("a whole number in range goes to Python; integer traits round", () => {
    const model = recordingModel({ steps: 64 });
    const { input } = control(model);
    enter(input, "100");
    expect(model.get("steps")).toBe(100);
    expect(model.saves).toBe(1);
    enter(input, "2.6");
    expect(model.get("steps")).toBe(3);
    expect(input.value).toBe("3");
  });

  test("a float trait keeps the fraction", () => {
    const model = recordingModel({ zoom: 1.05 });
    const input = numberControl(model, "zoom", "zoom", { min: "1", max: "2", step: "0.01" }, false).querySelector("input");
    enter(input, "1.5");
    expect(model.get("zoom")).toBe(1.5);
  });

  test.each([["0", "below min"], ["5000", "above max"], ["", "empty"]])("%s (%s) snaps back to the trait's value", (typed) => {
    const model = recordingModel({ steps: 64 });
    const { input } = control(model);
    enter(input, typed);
    expect(model.get("steps")).toBe(64);
    expect(model.saves).toBe(0);
    expect(input.value).toBe("64");
  });

  test("cleanup stops following the trait", () => {
    const model = recordingModel({ steps: 64 });
    const { node, input } = control(model);
    node.cleanup();
    model.set("steps", 8);
    expect(input.value).toBe("64");
  });
});

describe("choiceControl", () => {
  test("offers the options trait, formatted, and sends the choice", () => {
    const model = recordingModel({
      layer: "block1_conv1",
      layer_options: [{ name: "block1_conv1", channels: 32 }, { name: "block2_conv1", channels: 64 }],
    });
    const node = choiceControl(model, "layer", "layer", "layer_options", (o) => `${o.name} · ${o.channels}`);
    const select = node.querySelector("select");
    expect([...select.options].map((o) => [o.value, o.textContent])).toEqual([
      ["block1_conv1", "block1_conv1 · 32"], ["block2_conv1", "block2_conv1 · 64"],
    ]);
    expect(select.value).toBe("block1_conv1");
    expect(node.hidden).toBe(false);
    enter(select, "block2_conv1");
    expect(model.get("layer")).toBe("block2_conv1");
    expect(model.saves).toBe(1);
    model.set("layer", "block1_conv1");
    expect(select.value).toBe("block1_conv1");
  });

  test("refills when the options change; a widget without options hides the control", () => {
    const model = recordingModel({ sort: "", sort_options: [] });
    const node = choiceControl(model, "sort", "sort", "sort_options");
    expect(node.hidden).toBe(true);
    model.set("sort_options", ["index", "mean"]);
    expect([...node.querySelectorAll("option")].map((o) => o.value)).toEqual(["index", "mean"]);
  });
});

describe("errorLine", () => {
  test("shows the error as text and hides when there is none", () => {
    const model = recordingModel({ error: "" });
    const node = errorLine(model);
    expect(node.hidden).toBe(true);
    model.set("error", "ValueError: <b>layer</b> must be one of block1_conv1");
    expect(node.hidden).toBe(false);
    expect(node.textContent).toBe("ValueError: <b>layer</b> must be one of block1_conv1");
    expect(node.querySelector("b")).toBe(null);  // text, never HTML
    expect(node.getAttribute("role")).toBe("alert");
  });
});

describe("runControls", () => {
  test("Run and Stop send their messages and are enabled only when they can act", () => {
    const model = recordingModel({ running: false, progress: 0, status: "" });
    const node = runControls(model);
    const [run, stop] = node.querySelectorAll("button");
    expect([run.disabled, stop.disabled]).toEqual([false, true]);
    run.click();
    model.set("running", true);
    model.set("progress", 0.25);
    model.set("status", "step 16 / 64");
    expect([run.disabled, stop.disabled]).toEqual([true, false]);
    expect(node.querySelector("progress").value).toBe(0.25);
    expect(node.querySelector(".cw-status").textContent).toBe("step 16 / 64");
    expect(node.dataset.running).toBe("true");
    stop.click();
    expect(model.sent.map((m) => m.content)).toEqual([{ type: "run" }, { type: "stop" }]);
  });
});

describe("imagePicker", () => {
  test("an uploaded image shows as '(your image)' and its bytes go to Python", async () => {
    const model = recordingModel({ sample: "sneaker", sample_options: ["sneaker", "bag"] });
    const picker = imagePicker(model);
    const select = picker.sample.querySelector("select");
    expect([...select.options].map((o) => o.value)).toEqual(["sneaker", "bag"]);
    const input = picker.upload.querySelector("input[type=file]");
    const file = new File([new Uint8Array([137, 80, 78, 71])], "cat.png", { type: "image/png" });
    Object.defineProperty(input, "files", { value: [file], configurable: true });
    input.dispatchEvent(new Event("change"));
    await vi.waitFor(() => expect(model.sent).toHaveLength(1));
    expect(model.sent[0].content).toEqual({ type: "upload", name: "cat.png" });
    expect([...new Uint8Array(model.sent[0].buffers[0])]).toEqual([137, 80, 78, 71]);
    model.set("sample", "");  // what Python does after an upload
    expect(select.value).toBe("");
    expect(select.options[0].textContent).toBe("(your image)");
    picker.cleanup();
  });
});

describe("reportLeaving", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => { vi.useRealTimers(); document.body.replaceChildren(); });
  const kinds = (model) => model.sent.map((m) => m.content.type);
  // What Python sends the view (anywidget's "msg:custom" event).
  const ask = (model) => { for (const fn of model.listeners.get("msg:custom") || []) fn({ type: "away?" }); };

  test("tells Python once focus has left the widget, not while it is still inside", () => {
    const model = recordingModel({});
    const input = h("input");
    const root = h("div", { tabindex: "0" }, [input]);
    const outside = h("button");
    document.body.append(root, outside);
    const release = reportLeaving(model, root);
    expect(kinds(model)).toEqual(["shown"]);
    input.focus();
    root.dispatchEvent(new Event("focusout"));
    vi.runAllTimers();
    expect(kinds(model)).toEqual(["shown", "entered"]);
    outside.focus();  // jsdom fires focusout as a browser does
    vi.runAllTimers();
    expect(kinds(model)).toEqual(["shown", "entered", "left"]);
    const view = model.sent[0].content.view;
    expect(model.sent.every((m) => m.content.view === view)).toBe(true);
    release();
    root.dispatchEvent(new Event("focusout"));
    vi.runAllTimers();
    expect(model.sent).toHaveLength(3);
  });

  test("inside an Explorer, leaving one tab's view is not leaving the Explorer", () => {
    const model = recordingModel({});
    const root = h("div", { tabindex: "0" });
    const sibling = h("button");
    const outside = h("button");
    document.body.append(h("div", { class: "cw-explorer" }, [root, sibling]), outside);
    reportLeaving(model, root);
    root.focus();
    sibling.focus();
    vi.runAllTimers();
    expect(kinds(model)).toEqual(["shown", "entered"]);
    outside.focus();
    vi.runAllTimers();
    expect(kinds(model)).toEqual(["shown", "entered", "left"]);
  });

  test("a late question finds the person back: the view does not answer, so nothing redraws it", () => {
    const model = recordingModel({});
    const root = h("div", { tabindex: "0" });
    const outside = h("button");
    document.body.append(root, outside);
    reportLeaving(model, root);
    root.focus();
    outside.focus();
    vi.runAllTimers();
    root.focus();  // back before Python asked (its "left" waited behind a busy kernel)
    vi.runAllTimers();
    expect(kinds(model)).toEqual(["shown", "entered", "left", "entered"]);
    ask(model);
    expect(kinds(model)).toEqual(["shown", "entered", "left", "entered"]);
    outside.focus();
    vi.runAllTimers();
    ask(model);  // left for good: now it answers
    expect(kinds(model)).toEqual(["shown", "entered", "left", "entered", "left", "away"]);
  });

  test("while an update of the saved picture may still come, the view says so", () => {
    const model = recordingModel({});
    const root = h("div", { tabindex: "0" });
    const outside = h("button");
    document.body.append(root, outside);
    reportLeaving(model, root);
    const tell = (type) => { for (const fn of model.listeners.get("msg:custom") || []) fn({ type }); };
    root.focus();
    vi.runAllTimers();
    ask(model);  // a cell changed the widget while the person is in it: the update is owed
    expect(root.dataset.savedPicture).toBe("owed");
    tell("saved");  // an answer to another view: still owed
    expect(root.dataset.savedPicture).toBe("owed");
    outside.focus();
    vi.runAllTimers();
    expect(kinds(model)).toEqual(["shown", "entered", "left"]);
    expect(root.dataset.savedPicture).toBe("asking");
    ask(model);
    expect(root.dataset.savedPicture).toBe("asking");
    tell("saved");  // Python had nothing to update (else the view is drawn anew)
    expect(root.dataset.savedPicture).toBeUndefined();
  });

  test("a view taken out of the page answers that nobody is in it", () => {
    const model = recordingModel({});
    const root = h("div", { tabindex: "0" });
    document.body.append(root);
    reportLeaving(model, root);
    root.focus();
    root.remove();  // the notebook redrew it: the old view is gone, its cleanup not yet called
    ask(model);
    expect(kinds(model)).toEqual(["shown", "entered", "left", "away"]);
  });
});
