/* tabpilot Studio's own script: charts from JSON blocks, live regions fed by Server-Sent
   Events. No inline code anywhere (the CSP is default-src 'self'): pages carry data in
   <script type="application/json"> blocks and data-* attributes, read here. */
(function () {
  "use strict";

  function css(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  var charts = [];

  /* Best score over time: a step line of the best so far, a dot per trial. */
  function drawHistory(root) {
    var box = root.querySelector("#history-plot");
    var data = readJson("history-data");
    if (!box || !data || !data.x || !data.x.length || typeof uPlot === "undefined") { return; }
    var fg = css("--fg", "#1b1f24"), accent = css("--accent", "#0a58ca"),
        muted = css("--muted", "#4f5964"), line = css("--line", "#d0d7de");
    var axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    var opts = {
      width: Math.max(280, box.clientWidth || 600), height: 280,
      scales: { x: { time: false } },
      axes: [Object.assign({ label: "seconds since start" }, axis),
             Object.assign({ label: data.metric || "score" }, axis)],
      series: [
        { label: "seconds" },
        { label: "best so far", stroke: accent, width: 2, paths: uPlot.paths.stepped({ align: 1 }),
          points: { show: false } },
        { label: "trial score", stroke: muted, width: 0, paths: function () { return null; },
          points: { show: true, size: 6, stroke: muted, fill: muted } }
      ]
    };
    box.textContent = "";
    charts.push(new uPlot(opts, [data.x, data.best, data.score], box));
  }

  function drawAll(root) {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    drawHistory(root);
  }

  /* A live region: when its event stream says the job changed, fetch its HTML again. */
  function follow(region) {
    var events = region.getAttribute("data-events");
    var source = region.getAttribute("data-live");
    if (!events || !source || !region.hasAttribute("data-active") || !window.EventSource) { return; }
    var version = region.getAttribute("data-version");
    var fetching = false, again = false;
    var stream = new EventSource(events);

    function refresh() {
      if (fetching) { again = true; return; }
      fetching = true;
      fetch(source, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var focused = document.activeElement && document.activeElement.id;
          // boxes ticked to compare survive the refresh (matched by id)
          var ticked = Array.prototype.map.call(
            region.querySelectorAll("input[type=checkbox]:checked"), function (b) { return b.id; });
          region.innerHTML = html;
          ticked.forEach(function (id) {
            var box = id && document.getElementById(id);
            if (box) { box.checked = true; }
          });
          drawAll(region);
          if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
          document.dispatchEvent(new CustomEvent("studio:updated", { detail: region.id }));
        })
        .catch(function () { /* the next event tries again */ })
        .finally(function () { fetching = false; if (again) { again = false; refresh(); } });
    }

    stream.addEventListener("update", function (e) {
      if (e.data !== version) { version = e.data; refresh(); }
    });
    stream.addEventListener("end", function () { stream.close(); refresh(); });
    window.addEventListener("pagehide", function () { stream.close(); });
  }

  function start() {
    drawAll(document);
    document.querySelectorAll("[data-events]").forEach(follow);
    if (window.matchMedia) {  // the system switched between light and dark: new colours
      var scheme = window.matchMedia("(prefers-color-scheme: dark)");
      var redraw = function () { drawAll(document); };
      if (scheme.addEventListener) { scheme.addEventListener("change", redraw); }
    }
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { drawAll(document); }, 200);
    });
  }

  window.Studio = { readJson: readJson, css: css };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else { start(); }
})();
