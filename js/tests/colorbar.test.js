// The live colorbar's numbers never run together (js/colorbar.js), as saved pictures' (render.readable_ticks).
import { describe, expect, test } from "vitest";
import { colorbarNode, readableTicks } from "../colorbar.js";

describe("readableTicks", () => {
  test("keeps both ends, then zero, then the others that stay clear of every kept number", () => {
    // -0.422, -0.25, 0, 0.25, 0.422 under a 320 px bar: -0.25 starts 2 px after -0.422 ends.
    const boxes = [[0, 30], [32, 58], [157, 163], [228, 252], [290, 320]];
    expect([...readableTicks(boxes, [2])].sort()).toEqual([0, 2, 3, 4]);
  });
  test("drops the number that would run into the top end (GradCAM's '0.030.0366')", () => {
    const boxes = [[0, 6], [60, 80], [128, 148], [196, 216], [218, 254]];
    expect([...readableTicks(boxes, [0])].sort()).toEqual([0, 1, 2, 4]);
  });
  test("keeps everything that fits, and one tick alone", () => {
    expect([...readableTicks([[0, 10], [50, 60], [100, 110]])].sort()).toEqual([0, 1, 2]);
    expect([...readableTicks([[0, 10]])]).toEqual([0]);
    expect([...readableTicks([])]).toEqual([]);
  });
});

test("a bar not laid out yet (no width) hides no number", () => {
  const node = colorbarNode("grid_colorbar");
  node.draw({ stops: ["#000", "#fff"], ticks: [{ value: 0, at: 0, label: "0" }, { value: 1, at: 1, label: "1" }], zero: null, low: 0, high: 1, note: "" });
  const labels = [...node.querySelectorAll(".cw-colorbar-tick")];
  expect(labels.map((label) => label.textContent)).toEqual(["0", "1"]);
  expect(labels.every((label) => label.style.visibility === "")).toBe(true);
});
