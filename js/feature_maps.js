// FeatureMaps: the tile viewer plus the before/after-activation choice, an image picker
// (shipped samples or an upload) and channel sorting.
import { bindImage, choiceControl, h, imagePicker } from "./common.js";
import { tileViewer } from "./tile_viewer.js";

function render({ model, el }) {
  const thumbnail = h("img", { class: "cw-input-image", alt: "input image" });
  const picker = imagePicker(model);
  const releaseThumbnail = bindImage(model, "image_png", thumbnail);
  const cleanup = tileViewer({ model, el }, "feature-maps", [
    choiceControl(model, "show", "stage", "stage_options", (option) => option.label),
    choiceControl(model, "sort", "sort_by", "sort_options"),
    picker.sample,
    picker.upload,
  ]);
  el.querySelector(".cw-enlarged").prepend(h("div", { class: "cw-input" }, [thumbnail]));
  return () => { cleanup(); releaseThumbnail(); picker.cleanup(); };
}

export default { render };
