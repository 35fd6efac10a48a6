// Fills in the per-shopper part of the header (cart count, greeting) from an
// uncached fragment, so the page around it can be cached by the proxy.
// Without JavaScript the header keeps its plain "Cart" link.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var slot = document.getElementById("you");
  if (!slot || !window.fetch) { return; }
  fetch(slot.getAttribute("data-fragment"), { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.text() : null; })
    .then(function (html) { if (html !== null) { slot.innerHTML = html; } })
    .catch(function () { /* the plain link stays */ });
});

// On a phone-width screen the facets start folded under "Filter results", so the
// products come first; the chosen filters stay in view. Without JavaScript they are open.
document.addEventListener("DOMContentLoaded", function () {
  var filters = document.querySelector("details.filters");
  if (filters && window.matchMedia && window.matchMedia("(max-width: 48rem)").matches) {
    filters.open = false;
  }
});
