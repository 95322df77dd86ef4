/* The compare page's overlaid curves: one uPlot chart per curve from the page's
   "compare-curves" JSON block. Each series gets its own colour AND dash pattern, and the
   legend names it, so colour is never the only cue; the page's tables hold the points. */
(function () {
  "use strict";
  var COLOURS = ["#1f6fb2", "#d9822b", "#3a9d5d", "#9b59b6", "#c0392b", "#17a2b8", "#7f8c8d", "#b8860b"];
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2], [12, 6], [6, 2, 2, 2]];

  function css(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  function draw() {
    var block = document.getElementById("compare-curves");
    if (!block || typeof uPlot === "undefined") { return; }
    var curves;
    try { curves = JSON.parse(block.textContent); } catch (e) { return; }
    var fg = css("--fg", "#1b1f24"), line = css("--line", "#d0d7de");
    var axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    curves.forEach(function (curve) {
      var box = document.getElementById("plot-" + curve.id);
      if (!box) { return; }
      var series = [{ label: curve.xlabel }];
      var data = [curve.x];
      curve.series.forEach(function (s, i) {
        series.push({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2,
                      dash: DASHES[i % DASHES.length], points: { show: false } });
        data.push(s.y);
      });
      var opts = {
        width: Math.max(280, box.clientWidth || 520), height: 300,
        scales: curve.unit ? { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } }
                           : { x: { time: false } },
        axes: [Object.assign({ label: curve.xlabel }, axis), Object.assign({ label: curve.ylabel }, axis)],
        series: series
      };
      box.textContent = "";
      new uPlot(opts, data, box);
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
}());
