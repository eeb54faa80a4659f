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
  // The input the model receives (resized, in its channels), its size, and what the model expects.
  const inputCaption = h("div", { class: "cw-input-caption" });
  const expects = h("div", { class: "cw-input-expects" });
  const syncInput = () => {
    inputCaption.textContent = model.get("input_caption") || "";
    expects.textContent = model.get("expects") || "";
  };
  model.on("change:input_caption", syncInput);
  model.on("change:expects", syncInput);
  syncInput();
  el.querySelector(".cw-enlarged").prepend(h("div", { class: "cw-input" }, [thumbnail, inputCaption, expects]));
  return () => {
    cleanup(); releaseThumbnail(); picker.cleanup();
    model.off("change:input_caption", syncInput); model.off("change:expects", syncInput);
  };
}

export default { render };
