// The index's filter: narrows the questions by text, and, given a server or a Django version or
// both, says the answer there. Works from a file:// URL (no server, no fetch).
(function () {
  "use strict";
  var perPlace = JSON.parse(document.getElementById("per-place").textContent);
  var q = document.getElementById("q");
  var server = document.getElementById("server");
  var version = document.getElementById("version");
  var shown = document.getElementById("shown");
  var entries = Array.prototype.slice.call(document.querySelectorAll("article.entry"));

  function apply() {
    var words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    var s = server.value, v = version.value, count = 0;
    entries.forEach(function (entry) {
      var text = entry.getAttribute("data-search");
      var places = perPlace[entry.id] || {};
      var visible = words.every(function (w) { return text.indexOf(w) >= 0; });
      if (s && !places[s]) visible = false;  // not tested on that server
      var line = entry.querySelector(".at-place");
      if (visible && s) {
        var here = v ? [[v, places[s][v]]] : Object.keys(places[s]).map(function (k) { return [k, places[s][k]]; });
        line.textContent = "On " + s + ": " + here.map(function (pair) {
          return "Django " + pair[0] + " " + (pair[1] === "yes" ? "yes" : "no");
        }).join(", ");
        line.hidden = false;
      } else if (visible && v && Object.keys(places).length) {
        // A Django version without a server: the answer there on each server the claim was
        // tested on, grouped.
        var said = { yes: [], no: [] };
        Object.keys(places).forEach(function (name) {
          said[places[name][v] === "yes" ? "yes" : "no"].push(name);
        });
        line.textContent = "On Django " + v + ": " + ["yes", "no"].filter(function (word) {
          return said[word].length;
        }).map(function (word) { return word + " on " + said[word].join(", "); }).join("; ");
        line.hidden = false;
      } else {
        line.hidden = true;
      }
      entry.hidden = !visible;
      if (visible) count += 1;
    });
    document.querySelectorAll("section.topic").forEach(function (section) {
      section.hidden = !section.querySelector("article.entry:not([hidden])");
    });
    shown.textContent = count + " of " + entries.length + " shown";
  }
  [q, server, version].forEach(function (el) { el.addEventListener("input", apply); });
  var params = new URLSearchParams(window.location.search);
  if (params.get("q")) q.value = params.get("q");
  apply();
}());
