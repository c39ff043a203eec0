// Fixes for Django admin's own widgets, found by axe-core (WCAG 2.1 AA): the "choose several"
// boxes (SelectFilter2.js) draw a help icon as a <span> with an aria-label and no role, which
// assistive technologies do not read; as an image it is named. Runs after the admin's own
// "load" handlers, which build those boxes.
"use strict";
window.addEventListener("load", () => {
  document.querySelectorAll("span.help-tooltip[aria-label]:not([role])").forEach((icon) => {
    icon.setAttribute("role", "img");
  });
});
