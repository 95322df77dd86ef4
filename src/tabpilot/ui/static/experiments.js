/* An experiment's chart: one metric by step, one uPlot series per run, from the page's
   "experiment-chart" JSON block. Each run gets its own colour AND dash pattern and its
   points are marked, so a run with one value still shows; the page's table holds the
   same numbers. */
(function () {
  "use strict";
  var COLOURS = ["#1f6fb2", "#d9822b", "#3a9d5d", "#9b59b6", "#c0392b", "#17a2b8",
                 "#7f8c8d", "#b8860b", "#2c3e50", "#e67e22", "#16a085", "#8e44ad"];
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2], [12, 6], [6, 2, 2, 2],
                [3, 6], [14, 4], [5, 2, 1, 2], [9, 9]];

  function css(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  function draw() {
    var block = document.getElementById("experiment-chart");
    var box = document.getElementById("plot-experiment");
    if (!block || !box || typeof uPlot === "undefined") { return; }
    var chart;
    try { chart = JSON.parse(block.textContent); } catch (e) { return; }
    if (!chart || !chart.x.length) { return; }
    var fg = css("--fg", "#1b1f24"), line = css("--line", "#d0d7de");
    var axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    var series = [{ label: chart.xlabel }];
    var data = [chart.x];
    chart.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2,
                    dash: DASHES[i % DASHES.length], spanGaps: true,
                    points: { show: true, size: 5 } });
      data.push(s.y);
    });
    box.textContent = "";
    new uPlot({
      width: Math.max(280, box.clientWidth || 640), height: 320,
      scales: { x: { time: false } },
      axes: [Object.assign({ label: chart.xlabel }, axis), Object.assign({ label: chart.ylabel }, axis)],
      series: series
    }, data, box);
  }
  document.addEventListener("DOMContentLoaded", draw);
}());
