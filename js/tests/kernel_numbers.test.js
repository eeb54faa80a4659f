// The numbers of a small kernel: written as a person reads them, on the colour each has
// in the picture, in a readable text colour, and gone for kernels with no numbers.
import { describe, expect, it } from "vitest";
import { formatWeight, kernelNumbers, textColorOn } from "../kernel_numbers.js";
import { recordingModel } from "./model.js";

describe("formatWeight", () => {
  it("gives three significant digits and keeps zero and tiny values readable", () => {
    expect(formatWeight(0.263693988)).toBe("0.264");
    expect(formatWeight(-0.0102379)).toBe("-0.0102");
    expect(formatWeight(0)).toBe("0");
    expect(formatWeight(2.5e-6)).toBe("2.5e-6");
    expect(formatWeight(12.0)).toBe("12");
  });
});

describe("textColorOn", () => {
  it("writes black on light cells and white on dark ones", () => {
    expect(textColorOn("#f7f7f7")).toBe("#000");
    expect(textColorOn("#053061")).toBe("#fff");
  });
});

describe("kernelNumbers", () => {
  it("draws one table per kernel with every weight and follows the trait", () => {
    const model = recordingModel({
      tile_numbers: [{ label: "input channel 0", values: [[-0.5, 0.25], [0, 1]], colors: [["#2166ac", "#fddbc7"], ["#f7f7f7", "#b2182b"]] }],
    });
    const node = kernelNumbers(model);
    expect(node.hidden).toBe(false);
    expect(node.querySelector("figcaption").textContent).toBe("input channel 0");
    expect([...node.querySelectorAll("td")].map((td) => td.textContent)).toEqual(["-0.5", "0.25", "0", "1"]);
    expect(node.querySelector("td").dataset.value).toBe("-0.5");
    model.set("tile_numbers", []);
    expect(node.hidden).toBe(true);
    expect(node.querySelectorAll("td").length).toBe(0);
    node.cleanup();
  });
});
