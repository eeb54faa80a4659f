// Where the tiles of a grid picture are, from the layout Python sends with it
// (cnn_widgets/render/grids.py, grid_layout): tile i sits in column i % columns and
// row i / columns, its top-left pixel at x = padding + column * (tile_width + padding),
// y = padding + row * (tile_height + label_height + padding).

/** The grid position under the point (x, y), in the picture's own pixels, or -1 for the
 *  padding between columns, the margin, outside the grid or past the last tile. A tile's
 *  label band and the padding below it count as the tile. */
export function tileAt(layout, x, y) {
  if (!layout) return -1;
  x -= layout.padding;
  y -= layout.padding;
  const cellW = layout.tile_width + layout.padding, cellH = layout.tile_height + layout.label_height + layout.padding;
  const col = Math.floor(x / cellW), row = Math.floor(y / cellH);
  if (x < 0 || y < 0 || col >= layout.columns || x - col * cellW > layout.tile_width) return -1;
  const position = row * layout.columns + col;
  return position < layout.n ? position : -1;
}

/** The tile at a grid position as percentages of the picture ({left, top, width, height}),
 *  so an outline placed with them follows any resizing; null without a layout or a tile. */
export function tileBox(layout, position) {
  if (!layout || position < 0 || !layout.width) return null;
  const col = position % layout.columns, row = Math.floor(position / layout.columns);
  const left = layout.padding + col * (layout.tile_width + layout.padding);
  const top = layout.padding + row * (layout.tile_height + layout.label_height + layout.padding);
  return {
    left: 100 * left / layout.width, top: 100 * top / layout.height,
    width: 100 * layout.tile_width / layout.width, height: 100 * layout.tile_height / layout.height,
  };
}
