// Type-ahead for the code system search: the first matches as links under the box. Without
// JavaScript the form still searches (GET), so this only saves a round of typing.
(function () {
  "use strict";
  var box = document.querySelector("input[data-suggest]");
  if (!box) { return; }
  var list = document.getElementById("suggestions");
  var timer = null;
  var asked = 0;
  function show(items) {
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = item.href;
      a.textContent = item.code + " " + item.display;  // text, never markup
      li.appendChild(a);
      list.appendChild(li);
    });
  }
  box.addEventListener("input", function () {
    clearTimeout(timer);
    var text = box.value.trim();
    if (text.length < 2) { show([]); return; }
    timer = setTimeout(function () {
      var mine = ++asked;
      fetch(box.dataset.suggest + "?q=" + encodeURIComponent(text), {headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (items) { if (mine === asked) { show(items); } })
        .catch(function () { show([]); });
    }, 150);
  });
})();
