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

  it("keeps WCAG 4.5:1 on every colour of the diverging map, mid-tones included", () => {
    const linear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const luminance = (short) => {
      const hex = short.length === 4 ? `#${[...short.slice(1)].map((c) => c + c).join("")}` : short;
      const [r, g, b] = [1, 3, 5].map((at) => linear(parseInt(hex.slice(at, at + 2), 16) / 255));
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a, b) => (Math.max(luminance(a), luminance(b)) + 0.05) / (Math.min(luminance(a), luminance(b)) + 0.05);
    // RdBu stops, and the mid-red #d35a4a that got black at 3.9:1 under the old rule (the dark-theme test saw 4.0:1).
    for (const background of ["#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061", "#6aa9d0", "#d35a4a"]) {
      expect(contrast(background, textColorOn(background))).toBeGreaterThanOrEqual(4.5);
    }
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
