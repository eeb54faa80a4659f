// Where the tiles of a grid picture are (js/tile_layout.js): the click-to-tile mapping
// and the outline of the selected tile, for layouts as cnn_widgets/render/grids.py makes them.
import { describe, expect, test } from "vitest";
import { tileAt, tileBox } from "../tile_layout.js";

// grid_layout(10, 3, 3, scale=4): 10 tiles of 12 x 12 pixels, 4 columns, 3 rows.
const plain = { n: 10, columns: 4, rows: 3, tile_height: 12, tile_width: 12, label_height: 0, padding: 1, height: 40, width: 53 };
// The same tiles with a label band of 11 pixels under each (grid_layout(..., labels=True)).
const labelled = { ...plain, label_height: 11, height: 1 + 3 * (12 + 11 + 1) };

const center = (layout, position) => {
  const col = position % layout.columns, row = Math.floor(position / layout.columns);
  return [layout.padding + col * (layout.tile_width + layout.padding) + layout.tile_width / 2,
    layout.padding + row * (layout.tile_height + layout.label_height + layout.padding) + layout.tile_height / 2];
};

describe("tileAt", () => {
  test.each([["plain", plain], ["labelled", labelled]])("the middle of every tile is that tile (%s)", (_, layout) => {
    for (let position = 0; position < layout.n; position += 1) expect(tileAt(layout, ...center(layout, position))).toBe(position);
  });

  test("tile edges belong to the tile; the padding between columns and the margin to none", () => {
    expect(tileAt(plain, 1, 1)).toBe(0);  // top-left pixel of tile 0
    expect(tileAt(plain, 13, 1)).toBe(0);  // its right edge
    expect(tileAt(plain, 13.5, 5)).toBe(-1);  // padding between tiles 0 and 1
    expect(tileAt(plain, 14, 5)).toBe(1);
    expect(tileAt(plain, 0.5, 5)).toBe(-1);  // left margin
    expect(tileAt(plain, 5, 0.5)).toBe(-1);  // top margin
  });

  test("a tile's label band counts as the tile", () => {
    expect(tileAt(labelled, 5, 1 + 12 + 5)).toBe(0);
    expect(tileAt(labelled, 5, 1 + 12 + 11 + 1 + 2)).toBe(4);  // next row
  });

  test("past the last tile, beyond the last column or without a layout: no tile", () => {
    expect(tileAt(plain, ...center(plain, 10))).toBe(-1);  // row 2 holds tiles 8 and 9 only
    expect(tileAt(plain, 60, 5)).toBe(-1);
    expect(tileAt(null, 5, 5)).toBe(-1);
  });
});

describe("tileBox", () => {
  test("gives the tile in percent of the picture", () => {
    const box = tileBox(plain, 5);  // column 1, row 1: top-left pixel (14, 14)
    expect(box.left).toBeCloseTo(100 * 14 / 53);
    expect(box.top).toBeCloseTo(100 * 14 / 40);
    expect(box.width).toBeCloseTo(100 * 12 / 53);
    expect(box.height).toBeCloseTo(100 * 12 / 40);
    expect(tileBox(labelled, 4).top).toBeCloseTo(100 * (1 + 12 + 11 + 1) / labelled.height);
  });

  test("the middle of each box maps back to its tile", () => {
    for (const layout of [plain, labelled]) {
      for (let position = 0; position < layout.n; position += 1) {
        const box = tileBox(layout, position);
        const x = (box.left + box.width / 2) * layout.width / 100, y = (box.top + box.height / 2) * layout.height / 100;
        expect(tileAt(layout, x, y)).toBe(position);
      }
    }
  });

  test("no box without a layout, a width, or a tile in the grid", () => {
    expect(tileBox(null, 0)).toBe(null);
    expect(tileBox({ ...plain, width: 0 }, 0)).toBe(null);
    expect(tileBox(plain, -1)).toBe(null);
  });
});
