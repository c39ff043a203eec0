// The program form's live preview: on each change, the form is posted to the preview page,
// which answers the rules in plain words (as beneficiaries will read them) and how many shops
// would accept the aid. Nothing is saved until the manager saves the form.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("program_form");
  const preview = document.getElementById("rules-preview");
  if (!form || !preview) return;
  let timer = null;
  const refresh = () => {
    const data = new FormData(form);
    // the "choose several" boxes post only what is selected in their right-hand list
    form.querySelectorAll("select[multiple]").forEach((select) => {
      data.delete(select.name);
      Array.from(select.options).forEach((option) => {
        if (option.selected || select.id.endsWith("_to")) data.append(select.name, option.value);
      });
    });
    fetch(preview.dataset.url, { method: "POST", body: data, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => { preview.querySelector(".preview-body").innerHTML = html; })
      .catch(() => {});
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 400); };
  form.addEventListener("change", later);
  form.addEventListener("input", later);
  form.addEventListener("click", (event) => {
    if (event.target.closest(".selector-chooser, .selector-chooseall, .selector-clearall")) later();
  });
  refresh();
});
