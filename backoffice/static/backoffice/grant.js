// The grant page: choosing a program fills in its default validity (first and last day),
// which the manager may still change. Loaded from our origin, under the page's CSP.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const program = document.getElementById("id_program");
  const from = document.getElementById("id_valid_from");
  const until = document.getElementById("id_valid_until");
  if (!program || !from || !until) return;
  program.addEventListener("change", () => {
    const option = program.options[program.selectedIndex];
    if (!option || !option.dataset.validFrom) return;
    from.value = option.dataset.validFrom;
    until.value = option.dataset.validUntil || "";
  });
});
