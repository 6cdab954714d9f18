"""The page around report.html's data: HTML skeleton, CSS and the vanilla JS that draws SVG.

No library and no network: `chart()` below draws axes, mean lines, ± std bands, error bars,
reference lines and tooltips (SVG <title>). The script records what it drew on <body>
(data-charts, data-marks) and any error (data-errors) so a headless browser can check it.
"""

WELLLOG_SECTION = """
<h2 id=welllog>Warm vs cold fine-tuning (well logs)</h2>
<p>Eval F1 per epoch of the fine-tuned segmenter: <span class=warm>warm</span> (from the
pretrained network) vs <span class=cold>cold</span> (random init), mean ± std over seeds
(bands), on the same held-out logs; the dashed grey line is the threshold rule on those logs.
Hover a point for its step and n.</p>
<div class=controls>
  <label>label budget <select id=wl-budget></select></label>
  <span id=wl-class class=switch></span>
  <label>score <select id=wl-kind></select></label>
</div>
<div id=wl-chart class=chart></div>
<p id=wl-match class=figure></p>
<div id=wl-final></div>
<div id=wl-budget-block>
<h3>Final F1 vs label budget</h3>
<div id=wl-budget-chart class=chart></div>
</div>
"""

SIMMIM_SECTION = """
<h2 id=simmim>Segmentation vs labelled examples (SimMIM study)</h2>
<p>Final eval mIoU vs labelled training examples, one line per stage and its pretraining;
error bars are 95 % Student-t CIs over seeds (none for n = 1).</p>
<div id=sm-chart class=chart></div>
<div id=sm-inter-block>
<h3>Effect of the intermediate classification stage</h3>
<p>mIoU with the intermediate stage minus without, paired by seed and labels; above 0 the
intermediate stage helps. Error bars: 95 % CI of the paired difference.</p>
<div id=sm-inter class=chart></div>
</div>
"""

CONVERGENCE_SECTION = """
<h2 id=convergence>Convergence of every group</h2>
<div class=controls><label>metric <select id=cv-metric></select></label></div>
<div id=cv-chart class=chart></div>
"""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em;overflow-wrap:anywhere}
h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.9em}.warm{color:#d62728;font-weight:600}
.cold{color:#1f77b4;font-weight:600}
.controls{display:flex;gap:1.2em;align-items:center;margin:.6em 0;flex-wrap:wrap}
.switch button{border:1px solid #999;background:#fff;padding:.2em .8em;cursor:pointer}
.switch button.on{background:#333;color:#fff}
.chart svg{width:100%;height:auto;max-width:820px;display:block}
.legend{font-size:12px;display:flex;flex-wrap:wrap;gap:.3em 1.2em;max-width:820px}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:.4em}
.figure{background:#f6f6f0;border-left:4px solid #d62728;padding:.5em .8em;max-width:800px}
table{border-collapse:collapse;font-size:12.5px;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.runs td:nth-child(6){color:#555}
tr.st-incomplete td:first-child,tr.st-unknown td:first-child{background:#fde2b8}
tr.st-duplicate td:first-child{background:#f9c9c9}tr.st-missing td:first-child{background:#f4b1b1}
tr.st-complete td:first-child{color:#2a7a2a}
.warn{background:#fff4e5;border:1px solid #f0b060;padding:.4em .8em}
.gallery{display:flex;flex-wrap:wrap;gap:1em}.gallery figure{margin:0;max-width:520px}
.gallery img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}
figcaption{font-size:12px;color:#444}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""

JS = r"""
(function () {
"use strict";
var errors = [];
function noteError(msg) {
  errors.push(String(msg));
  document.body.setAttribute("data-errors", errors.join(" | "));
}
window.addEventListener("error", function (e) { noteError(e.message); });
var D = JSON.parse(document.getElementById("report-data").textContent);
var NS = "http://www.w3.org/2000/svg";
var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#d62728"];
var ARM = {warm: "#d62728", cold: "#1f77b4"};
var marks = 0;

function svgEl(tag, attrs, parent) {
  var e = document.createElementNS(NS, tag);
  for (var k in attrs) { e.setAttribute(k, attrs[k]); }
  if (parent) { parent.appendChild(e); }
  return e;
}
function htmlEl(tag, attrs, text, parent) {
  var e = document.createElement(tag);
  for (var k in attrs) { e.setAttribute(k, attrs[k]); }
  if (text !== undefined && text !== null) { e.textContent = text; }
  if (parent) { parent.appendChild(e); }
  return e;
}
function fmt(x, d) {
  return (x === null || x === undefined) ? "-" : Number(x).toFixed(d === undefined ? 3 : d);
}
function stat(s) {  // [mean, std, ci, n]
  if (!s) { return "-"; }
  return s[3] > 1 ? fmt(s[0]) + " ± " + fmt(s[1]) + " (CI ±" + fmt(s[2]) + ", n=" + s[3] + ")"
                  : fmt(s[0]) + " (n=1, no CI)";
}
function niceTicks(lo, hi, n) {
  var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / n)));
  var err = n / span * step;
  if (err <= 0.15) { step *= 10; } else if (err <= 0.35) { step *= 5; }
  else if (err <= 0.75) { step *= 2; }
  var out = [];
  for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return out;
}
function logTicks(lo, hi) {
  var out = [];
  for (var p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    [1, 2, 5].forEach(function (m) {
      var v = m * Math.pow(10, p);
      if (v >= lo * 0.999 && v <= hi * 1.001) { out.push(v); }
    });
  }
  return out;
}

// o: {xlabel, ylabel, ylim: [lo, hi] or null, logx, series: [{name, color, dash, band, bars,
//     pts: [[x, y, lo, hi, tip]]}], hlines: [{y, name, color, dash}], vlines: [{x, name}]}
function chart(box, o) {
  box.textContent = "";
  var W = 760, H = 360, L = 56, R = 150, T = 14, B = 44;
  var xs = [], ys = [];
  o.series.forEach(function (s) {
    s.pts.forEach(function (p) {
      if (p[1] === null) { return; }
      xs.push(p[0]); ys.push(p[1]);
      if (p[2] !== null && p[2] !== undefined) { ys.push(p[2], p[3]); }
    });
  });
  if (!xs.length) { htmlEl("p", {"class": "meta"}, "no data for this choice", box); return; }
  (o.hlines || []).forEach(function (h) { ys.push(h.y); });
  (o.vlines || []).forEach(function (v) { xs.push(v.x); });
  if (o.x0) { xs.push(o.x0[0]); }
  var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
  var logx = o.logx && x0 > 0;
  var fx = logx ? Math.log10 : function (v) { return v; };
  var a = fx(x0), b = fx(x1);
  if (a === b) { a -= 1; b += 1; }
  var pad = (b - a) * 0.04; a -= pad; b += pad;
  var y0, y1;
  if (o.ylim) { y0 = o.ylim[0]; y1 = o.ylim[1]; } else {
    y0 = Math.min.apply(null, ys); y1 = Math.max.apply(null, ys);
    var py = (y1 - y0) * 0.08 || 0.05; y0 -= py; y1 += py;
  }
  var sx = function (v) { return L + (fx(v) - a) / (b - a) * (W - L - R); };
  var sy = function (v) {
    var c = Math.max(y0, Math.min(y1, v));
    return T + (1 - (c - y0) / (y1 - y0)) * (H - T - B);
  };
  var svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box);
  svgEl("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff",
                 stroke: "#bbb"}, svg);
  niceTicks(y0, y1, 6).forEach(function (t) {
    svgEl("line", {x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#eee"}, svg);
    svgEl("text", {x: L - 6, y: sy(t) + 4, "text-anchor": "end"}, svg).textContent =
        +t.toFixed(3);
  });
  // Every x here counts something (epochs, examples, logs): integer ticks only.
  var xt = (logx ? logTicks(Math.pow(10, a), Math.pow(10, b)) : niceTicks(a, b, 8)).filter(
      function (t) { return Math.abs(t - Math.round(t)) < 1e-9; });
  xt.forEach(function (t) {
    svgEl("line", {x1: sx(t), x2: sx(t), y1: T, y2: H - B, stroke: "#f2f2f2"}, svg);
    svgEl("text", {x: sx(t), y: H - B + 15, "text-anchor": "middle"}, svg).textContent =
        +t.toFixed(3);
  });
  svgEl("text", {x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle"}, svg).textContent =
      o.xlabel + (logx ? " (log scale)" : "");
  svgEl("text", {x: 14, y: (T + H - B) / 2, "text-anchor": "middle",
                 transform: "rotate(-90 14 " + (T + H - B) / 2 + ")"}, svg).textContent =
      o.ylabel;
  var legend = [];
  (o.hlines || []).forEach(function (h) {
    svgEl("line", {x1: L, x2: W - R, y1: sy(h.y), y2: sy(h.y), stroke: h.color || "#666",
                   "stroke-width": 1.5, "stroke-dasharray": h.dash || "6 4"}, svg);
    svgEl("text", {x: W - R + 4, y: sy(h.y) + 4, fill: h.color || "#666"}, svg).textContent =
        h.name;
    marks++;
  });
  (o.vlines || []).forEach(function (v) {
    svgEl("line", {x1: sx(v.x), x2: sx(v.x), y1: T, y2: H - B, stroke: v.color || "#333",
                   "stroke-dasharray": "2 3"}, svg);
    svgEl("text", {x: sx(v.x) + 4, y: T + 12}, svg).textContent = v.name;
  });
  o.series.forEach(function (s) {
    var pts = s.pts.filter(function (p) { return p[1] !== null; });
    if (s.band) {
      var at = function (p, i) { return sx(p[0]) + "," + sy(p[i] === null ? p[1] : p[i]); };
      var upper = pts.map(function (p) { return at(p, 3); });
      var lower = pts.map(function (p) { return at(p, 2); });
      svgEl("polygon", {points: upper.concat(lower.reverse()).join(" "), fill: s.color,
                        "fill-opacity": 0.16, stroke: "none"}, svg);
    }
    var d = pts.map(function (p, i) { return (i ? "L" : "M") + sx(p[0]) + " " + sy(p[1]); });
    svgEl("path", {d: d.join(" "), fill: "none", stroke: s.color, "stroke-width": 2,
                   "stroke-dasharray": s.dash || ""}, svg);
    pts.forEach(function (p) {
      if (s.bars && p[2] !== null && p[2] !== undefined) {
        svgEl("line", {x1: sx(p[0]), x2: sx(p[0]), y1: sy(p[2]), y2: sy(p[3]), stroke: s.color},
              svg);
        [p[2], p[3]].forEach(function (v) {
          svgEl("line", {x1: sx(p[0]) - 4, x2: sx(p[0]) + 4, y1: sy(v), y2: sy(v),
                         stroke: s.color}, svg);
        });
      }
      var c = svgEl("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 3.5, fill: s.color}, svg);
      svgEl("title", {}, c).textContent = s.name + ": " + (p[4] || fmt(p[1]));
      marks++;
    });
    legend.push(s);
  });
  var lg = htmlEl("div", {"class": "legend"}, null, box);
  legend.forEach(function (s) {
    var item = htmlEl("span", {}, null, lg);
    htmlEl("i", {style: "background:" + s.color}, null, item);
    item.appendChild(document.createTextNode(s.name));
  });
  charts++;
}
var charts = 0;

function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
function option(sel, value, text) { htmlEl("option", {value: value}, text, sel); }

function bandPts(curve, who) {  // curve: [[epoch, mean, std, n, step]]
  return curve.map(function (p) {
    var lo = p[2] === null ? null : p[1] - p[2], hi = p[2] === null ? null : p[1] + p[2];
    return [p[0], p[1], lo, hi, who + " epoch " + p[0] + " (step " + p[4] + "): " + fmt(p[1]) +
            (p[3] > 1 ? " ± " + fmt(p[2]) + " std" : "") + ", n=" + p[3]];
  });
}

function panelKey(p) { return p.rest ? p.label : String(p.budget); }

function welllog() {
  var W = D.welllog;
  var bsel = document.getElementById("wl-budget"), ksel = document.getElementById("wl-kind");
  var sw = document.getElementById("wl-class");
  var state = {panel: W.panels.length - 1, cls: W.classes[0], kind: W.kinds[0]};
  // A view is a link: #budget=12&class=curve2&score=f1_tol1 (kept up to date).
  location.hash.slice(1).split("&").forEach(function (kv) {
    var k = decodeURIComponent(kv.split("=")[0]), v = decodeURIComponent(kv.split("=")[1] || "");
    W.panels.forEach(function (p, i) {
      if (k === "budget" && panelKey(p) === v) { state.panel = i; }
    });
    if (k === "class" && W.classes.indexOf(v) >= 0) { state.cls = v; }
    if (k === "score" && W.kinds.indexOf(v) >= 0) { state.kind = v; }
  });
  W.panels.forEach(function (p, i) { option(bsel, i, p.label); });
  bsel.value = state.panel;
  var kindNames = {f1: "F1 (exact pixels)", f1_tol1: "F1 within 1 px"};
  W.kinds.forEach(function (k) { option(ksel, k, kindNames[k] || k); });
  W.classes.forEach(function (c) {
    var btn = htmlEl("button", {type: "button", "data-class": c}, c, sw);
    btn.addEventListener("click", function () { state.cls = c; draw(); });
  });
  bsel.addEventListener("change", function () { state.panel = +bsel.value; draw(); });
  ksel.addEventListener("change", function () { state.kind = ksel.value; draw(); });

  function draw() {
    var p = W.panels[state.panel], m = state.kind + "/" + state.cls;
    ksel.value = state.kind;
    try {
      history.replaceState(null, "", "#budget=" + encodeURIComponent(panelKey(p)) + "&class=" +
                           encodeURIComponent(state.cls) + "&score=" + state.kind);
    } catch (e) { /* Some browsers refuse replaceState on file:// pages; the view still works. */ }
    Array.prototype.forEach.call(sw.children, function (b) {
      b.className = b.getAttribute("data-class") === state.cls ? "on" : "";
    });
    var series = [], hl = [], vl = [];
    ["cold", "warm"].forEach(function (arm) {
      var a = p.arms[arm];
      if (a && a.curves[m] && a.curves[m].length) {
        series.push({name: arm + " (n=" + a.n + ")", color: ARM[arm], band: true,
                     pts: bandPts(a.curves[m], arm)});
      }
    });
    if (p.rule[m] !== undefined) {
      hl.push({y: p.rule[m], name: "threshold rule " + fmt(p.rule[m], 2), color: "#777"});
    }
    var mt = p.match[m], text = "";
    if (mt) {
      hl.push({y: mt.target, name: "cold final " + fmt(mt.target, 2), color: ARM.cold,
               dash: "2 3"});
      var ratio = mt.epoch ? mt.cold_epoch / mt.epoch : 0;
      if (mt.target <= 0) {
        text = "Cold's final " + m + " is 0: it finds no curve in its " +
               plural(mt.cold_epoch, "epoch") + "; warm's final is " +
               fmt(p.arms.warm.final[m] && p.arms.warm.final[m][0]) + ".";
      } else if (mt.epoch !== null) {
        vl.push({x: mt.epoch, name: "warm reaches cold's final"});
        text = "Warm reaches cold's final " + m + " (" + fmt(mt.target) + ", after " +
               plural(mt.cold_epoch, "epoch") + " / " + plural(mt.cold_step, "step") +
               ") at epoch " + mt.epoch + " (step " + mt.step + ")" +
               (mt.first_eval ? ", its first eval (it may match earlier)" : "") + ": " +
               (ratio > 1 ? (mt.first_eval ? "at least " : "") + fmt(ratio, 1) +
                "x fewer epochs than cold." : "no sooner than cold.");
      } else {
        text = "Warm does not reach cold's final " + m + " (" + fmt(mt.target) +
               ") within its " + plural(mt.warm_epochs, "epoch") + ".";
      }
    } else {
      text = "Warm and cold runs with " + m + " are both needed for the comparison.";
    }
    document.getElementById("wl-match").textContent = text;
    chart(document.getElementById("wl-chart"), {
      xlabel: "epoch", ylabel: "eval " + m + " (mean ± std)", ylim: [0, 1], x0: [0],
      series: series,
      hlines: hl, vlines: vl});
    var fin = document.getElementById("wl-final");
    fin.textContent = "";
    var t = htmlEl("table", {}, null, fin), hr = htmlEl("tr", {}, null, t);
    ["arm", "seeds", "final " + m, "final " + state.kind + " (all classes)"].forEach(
        function (h) { htmlEl("th", {}, h, hr); });
    ["warm", "cold"].forEach(function (arm) {
      var a = p.arms[arm];
      if (!a) { return; }
      var tr = htmlEl("tr", {}, null, t);
      htmlEl("td", {}, arm, tr);
      htmlEl("td", {}, a.seeds.join(", "), tr);
      htmlEl("td", {}, stat(a.final[m]), tr);
      htmlEl("td", {}, W.classes.map(function (c) {
        var s = a.final[state.kind + "/" + c]; return c + " " + (s ? fmt(s[0]) : "-");
      }).join(", "), tr);
    });
    if (p.rule[m] !== undefined) {
      var tr = htmlEl("tr", {}, null, t);
      htmlEl("td", {}, "threshold rule", tr); htmlEl("td", {}, "-", tr);
      htmlEl("td", {}, fmt(p.rule[m]), tr); htmlEl("td", {}, "", tr);
    }
    // Final F1 vs budget, among panels with the same other settings.
    var same = W.panels.filter(function (q) { return q.rest === p.rest && q.budget !== null; });
    var block = document.getElementById("wl-budget-block");
    block.style.display = same.length > 1 ? "" : "none";
    if (same.length > 1) {
      var bs = [], lo = Infinity, hi = -Infinity;
      ["cold", "warm"].forEach(function (arm) {
        var pts = [];
        same.forEach(function (q) {
          var s = q.arms[arm] && q.arms[arm].final[m];
          if (!s) { return; }
          lo = Math.min(lo, q.budget); hi = Math.max(hi, q.budget);
          pts.push([q.budget, s[0], s[1] === null ? null : s[0] - s[1],
                    s[1] === null ? null : s[0] + s[1],
                    arm + " budget " + q.budget + ": " + stat(s)]);
        });
        if (pts.length) { bs.push({name: arm, color: ARM[arm], bars: true, pts: pts}); }
      });
      chart(document.getElementById("wl-budget-chart"), {
        xlabel: "labelled logs (budget)", ylabel: "final eval " + m + " (mean ± std)",
        ylim: [0, 1], logx: hi / lo >= 8, series: bs,
        hlines: p.rule[m] !== undefined ? [{y: p.rule[m], name: "threshold rule",
                                           color: "#777"}] : []});
    }
  }
  draw();
}

function ciPts(points, name) {  // points: [[x, mean, std, ci, n]]
  return points.map(function (p) {
    var lo = p[3] === null ? null : p[1] - p[3], hi = p[3] === null ? null : p[1] + p[3];
    return [p[0], p[1], lo, hi, name + " @ " + p[0] + ": " + stat(p.slice(1))];
  });
}

function simmim() {
  var S = D.simmim, xs = [];
  var series = S.series.map(function (s, i) {
    s.points.forEach(function (p) { xs.push(p[0]); });
    return {name: s.label, color: PALETTE[i % PALETTE.length], bars: true,
            pts: ciPts(s.points, s.label)};
  });
  var logx = Math.max.apply(null, xs) / Math.min.apply(null, xs) >= 8;
  chart(document.getElementById("sm-chart"), {
    xlabel: "labelled training examples", ylabel: "final eval " + S.metric + " (95 % CI)",
    logx: logx, series: series});
  var block = document.getElementById("sm-inter-block");
  if (!S.intermediate.length) { block.style.display = "none"; return; }
  chart(document.getElementById("sm-inter"), {
    xlabel: "labelled training examples", ylabel: "Δ " + S.metric + " (with - without)",
    logx: logx, hlines: [{y: 0, name: "no difference", color: "#999"}],
    series: S.intermediate.map(function (s, i) {
      return {name: s.label, color: PALETTE[i % PALETTE.length], bars: true,
              pts: ciPts(s.points, s.label)};
    })});
}

function convergence() {
  var C = D.convergence, sel = document.getElementById("cv-metric"), names = [];
  C.forEach(function (g) {
    Object.keys(g.curves).forEach(function (m) { if (names.indexOf(m) < 0) { names.push(m); } });
  });
  names.forEach(function (m) { option(sel, m, m); });
  sel.value = names.indexOf("miou") >= 0 ? "miou" : names[0];
  function draw() {
    var m = sel.value, series = [];
    C.forEach(function (g, i) {
      if (g.curves[m] && g.curves[m].length) {
        series.push({name: g.group, color: PALETTE[i % PALETTE.length], band: true,
                     pts: bandPts(g.curves[m], g.group)});
      }
    });
    chart(document.getElementById("cv-chart"), {
      xlabel: "epoch", ylabel: "eval " + m + " (mean ± std)", x0: [0],
      ylim: m === "loss" ? null : [0, 1], series: series});
  }
  sel.addEventListener("change", draw);
  draw();
}

try {
  if (D.welllog) { welllog(); }
  if (D.simmim) { simmim(); }
  if (D.convergence && D.convergence.length) { convergence(); }
} catch (e) {
  noteError(e && e.stack ? e.stack : e);
}
document.body.setAttribute("data-charts", charts);
document.body.setAttribute("data-marks", marks);
})();
"""

PAGE = """<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>%TITLE% · ssl_seg report</title>
<style>""" + CSS + """</style></head>
<body>
%BODY%
<script type="application/json" id="report-data">%DATA%</script>
<script>""" + JS + """</script>
</body></html>
"""
