// FeatureMaps: the tile viewer plus an image picker (shipped samples or an upload) and channel sorting.

function render({ model, el }) {
  const thumbnail = h("img", { class: "cw-input-image", alt: "input image" });
  const upload = h("input", { type: "file", accept: "image/*", class: "cw-upload", title: "upload an image" });
  upload.addEventListener("change", async () => {
    const file = upload.files && upload.files[0];
    if (!file) return;
    const data = await file.arrayBuffer();
    model.send({ type: "upload", name: file.name }, undefined, [data]);
    upload.value = "";
  });
  const sample = choiceControl(model, "image", "sample", "sample_options");
  const sampleSelect = sample.querySelector("select");
  const markCustom = () => {
    if (!model.get("sample")) {
      if (!sampleSelect.querySelector('option[value=""]')) sampleSelect.prepend(h("option", { value: "", text: "(your image)" }));
      sampleSelect.value = "";
    }
  };
  model.on("change:sample", markCustom);
  markCustom();
  const releaseThumbnail = bindImage(model, "image_png", thumbnail);
  const cleanup = tileViewer({ model, el }, "feature-maps", [
    choiceControl(model, "sort", "sort_by", "sort_options"),
    sample,
    h("label", { class: "cw-control cw-upload-label" }, [h("span", { text: "upload" }), upload]),
  ]);
  el.querySelector(".cw-enlarged").prepend(h("div", { class: "cw-input" }, [thumbnail]));
  return () => { cleanup(); releaseThumbnail(); model.off("change:sample", markCustom); };
}

export default { render };
