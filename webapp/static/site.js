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
