// Completions for the search box: fills its <datalist> from /search/suggest as the
// shopper types. The form works the same without this script.
(function () {
  "use strict";
  var input = document.querySelector("input[data-suggest]");
  if (!input || !window.fetch) { return; }
  var list = document.getElementById(input.getAttribute("list"));
  var url = input.getAttribute("data-suggest");
  var timer = null;
  var asked = "";
  function fill(completions) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    completions.forEach(function (text) {
      var option = document.createElement("option");
      option.value = text;
      list.appendChild(option);
    });
  }
  function ask() {
    var q = input.value;
    if (q === asked) { return; }
    asked = q;
    if (!q.trim()) { fill([]); return; }
    fetch(url + "?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { completions: [] }; })
      .then(function (body) { if (body.q === input.value) { fill(body.completions || []); } })
      .catch(function () { fill([]); });
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
})();
