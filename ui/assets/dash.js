// sluice dashboard: draws a job's timeline with uPlot and keeps it current.
(function () {
  "use strict";
  var C = { blue: "#2563eb", green: "#16a34a", red: "#dc2626", amber: "#d97706", violet: "#7c3aed",
    teal: "#0d9488", slate: "#64748b", pink: "#db2777", sky: "#0284c7" };
  var codeColors = [C.red, C.amber, C.violet, C.pink, C.sky, C.teal, C.slate, "#92400e", "#4d7c0f"];

  function fmtNum(v) {
    if (v == null) return "—";
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function fmtCost(v) { return v == null ? "—" : "$" + (v < 0.1 ? v.toFixed(4) : v < 100 ? v.toFixed(2) : v.toFixed(0)); }
  function series(label, color, opts) {
    var s = { label: label, stroke: color, width: 1.75, points: { show: false }, value: function (u, v) { return fmtNum(v); } };
    for (var k in opts || {}) s[k] = opts[k];
    return s;
  }
  function fill(color) { return color + "22"; }
  function axis(label, fmt, side, scale) {
    var a = { label: label, labelSize: 18, size: 52, stroke: "#6b7686", grid: { stroke: "#eef1f5", width: 1 }, ticks: { stroke: "#e3e8ef" },
      values: function (u, vals) { return vals.map(fmt || fmtNum); } };
    if (side) { a.side = 1; a.grid = { show: false }; }
    if (scale) a.scale = scale;
    return a;
  }
  var xAxis = { stroke: "#6b7686", grid: { stroke: "#eef1f5", width: 1 }, ticks: { stroke: "#e3e8ef" } };

  // Each chart: its series and the columns of the data they take.
  var charts = {
    throughput: function (d) {
      return { series: [series("done/s", C.green, { fill: fill(C.green) }), series("failed/s", C.red), series("retried/s", C.amber), series("429/s", C.violet)],
        data: [d.done, d.failed, d.retried, d.throttled], axes: [axis("req/s")] };
    },
    latency: function (d) {
      var s = [series("p50", C.blue), series("p95", C.amber), series("p99", C.red)], cols = [d.p50, d.p95, d.p99];
      if (d.has_ttft) { s.push(series("TTFT p50", C.teal, { dash: [5, 4] })); cols.push(d.ttft); }
      return { series: s, data: cols, axes: [axis("ms")] };
    },
    tokens: function (d) {
      return { series: [series("prompt tok/s", C.sky, { fill: fill(C.sky) }), series("completion tok/s", C.violet),
        series("$ so far", C.green, { scale: "usd", value: function (u, v) { return fmtCost(v); } })],
        data: [d.prompt_tps, d.completion_tps, d.cost], axes: [axis("tokens/s"), axis("$", function (v) { return fmtCost(v); }, true, "usd")],
        scales: { usd: { auto: true } } };
    },
    errors: function (d) {
      var codes = Object.keys(d.errors || {}), s = [], cols = [];
      codes.sort(function (a, b) { return a === "429" ? -1 : b === "429" ? 1 : a < b ? -1 : 1; });
      codes.forEach(function (c, i) { s.push(series(c, c === "429" ? C.violet : codeColors[i % codeColors.length], { fill: c === "429" ? fill(C.violet) : undefined })); cols.push(d.errors[c]); });
      if (!codes.length) { s.push(series("errors/s", C.red)); cols.push(d.t.map(function () { return 0; })); }
      return { series: s, data: cols, axes: [axis("per s")], key: codes.join(",") };
    },
    limits: function (d) {
      return { series: [series("RPM", C.blue), series("TPM", C.amber, { scale: "tpm" })],
        data: [d.rpm, d.tpm], axes: [axis("requests/min"), axis("tokens/min", null, true, "tpm")], scales: { tpm: { auto: true } } };
    },
    waits: function (d) {
      return { series: [series("paused s", C.amber, { fill: fill(C.amber), paths: uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined }),
        series("breaker open", C.red, { paths: uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined, value: function (u, v) { return v == null ? "—" : v ? "open" : "closed"; } }),
        series("in flight", C.blue, { scale: "n" }), series("window", C.slate, { scale: "n", dash: [4, 4] })],
        data: [d.paused, d.breaker, d.in_flight, d.window], axes: [axis("s / open"), axis("requests", null, true, "n")],
        scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max || 0)]; } },
          n: { range: function (u, min, max) { return [0, Math.max(1, max || 0)]; } } } };
    }
  };

  function hasData(cols) {
    for (var i = 0; i < cols.length; i++) for (var j = 0; j < (cols[i] || []).length; j++) if (cols[i][j] != null) return true;
    return false;
  }

  function Board(root) {
    this.root = root;
    this.plots = {};
  }
  Board.prototype.draw = function (d) {
    var self = this;
    Array.prototype.forEach.call(this.root.querySelectorAll("[data-chart]"), function (card) {
      var name = card.getAttribute("data-chart"), spec = charts[name](d), el = card.querySelector(".plot");
      var data = [d.t].concat(spec.data);
      card.classList.toggle("empty-chart", !d.t.length || !hasData(spec.data));
      el.setAttribute("data-empty", d.live ? "no data yet" : d.ledger && (name === "limits" || name === "waits") ?
        "not recorded: the job ran without a timeline" : "none");
      var p = self.plots[name];
      if (p && p.key === (spec.key || "")) { p.u.setData(data); return; }
      if (p) { p.u.destroy(); }
      var scales = spec.scales || {};
      scales.x = { time: true };
      var opts = { width: Math.max(el.clientWidth, 280), height: 230, scales: scales, cursor: { drag: { x: true, y: false } },
        legend: { live: true }, series: [{ label: "time" }].concat(spec.series), axes: [xAxis].concat(spec.axes) };
      self.plots[name] = { u: new uPlot(opts, data, el), key: spec.key || "" };
    });
  };
  Board.prototype.resize = function () {
    var plots = this.plots, root = this.root;
    Object.keys(plots).forEach(function (name) {
      var el = root.querySelector('[data-chart="' + name + '"] .plot');
      plots[name].u.setSize({ width: Math.max(el.clientWidth, 280), height: 230 });
    });
  };

  function start() {
    var root = document.getElementById("charts");
    if (!root) return;
    var board = new Board(root);
    window.sluiceBoard = board;
    window.addEventListener("resize", function () { board.resize(); });
    var inline = document.getElementById("chart-data");
    if (inline) { board.draw(JSON.parse(inline.textContent)); return; }
    var src = root.getAttribute("data-src"), live = root.getAttribute("data-live") === "true";
    var every = parseInt(document.body.getAttribute("data-refresh"), 10) || 2000;
    function load() {
      fetch(src, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      }).then(function (d) {
        board.draw(d);
        window.sluiceDraws = (window.sluiceDraws || 0) + 1;
        if (d.live === false) live = false;
      }).catch(function () { }).then(function () { if (live) setTimeout(load, every); });
    }
    load();
  }

  // sluiceFilter hides the failed requests of a report whose row does not contain the text.
  window.sluiceFilter = function (input) {
    var q = input.value.toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll(".frow"), function (tr) {
      tr.style.display = tr.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
    });
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
