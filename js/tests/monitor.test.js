// TrainingMonitor's charts (js/monitor.js): what a student reads before and after the first steps.
import { describe, expect, test } from "vitest";
import widget from "../monitor.js";
import { recordingModel } from "./model.js";

function view(curves) {
  const model = recordingModel({
    curves, snapshot_steps: [], index: -1, filters_png: new DataView(new ArrayBuffer(0)), maps_png: new DataView(new ArrayBuffer(0)),
    cam_png: new DataView(new ArrayBuffer(0)), predictions: [], captions: {}, every_text: "", error: "",
  });
  const el = document.createElement("div");
  widget.render({ model, el });
  return el;
}

const lossTicks = (el) => [...el.querySelectorAll('svg[data-chart="loss"] text.cw-tick')].map((t) => t.textContent);

describe("TrainingMonitor loss chart", () => {
  test("before any step its axis reads 0 to 1, short labels that fit", () => {
    const ticks = lossTicks(view({ train: { step: [], loss: [], accuracy: [] }, validation: { step: [], loss: [], accuracy: [] }, steps: 0 }));
    expect(ticks).toContain("1.0");
    for (const label of ticks) expect(label.length).toBeLessThanOrEqual(4);
  });

  test("with numbers its axis reaches the largest loss", () => {
    const el = view({ train: { step: [1, 2], loss: [2.3, 1.1], accuracy: [0.1, 0.4] }, validation: { step: [], loss: [], accuracy: [] }, steps: 2 });
    expect(lossTicks(el).map(Number).some((v) => v >= 2.3 - 1e-9 || v >= 2)).toBe(true);
    expect(el.querySelector('svg[data-chart="loss"] polyline[data-series="train"]').dataset.points).toBe("2");
  });
});
