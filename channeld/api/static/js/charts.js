// Two small SVG charts drawn with DOM nodes: bars (payments per second) and a line (latency).

const NS = "http://www.w3.org/2000/svg";
const W = 600, H = 160, LEFT = 44, BOTTOM = 20, TOP = 10;

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(svg, yMax, label) {
  svg.replaceChildren();
  svg.append(svgEl("line", { class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W, y2: H - BOTTOM }));
  svg.append(svgEl("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
  svg.append(svgEl("text", { x: LEFT - 4, y: TOP + 8, "text-anchor": "end" }, niceNumber(yMax)));
  svg.append(svgEl("text", { x: LEFT - 4, y: H - BOTTOM, "text-anchor": "end" }, "0"));
  svg.append(svgEl("text", { x: LEFT, y: H - 4 }, "−60 min"));
  svg.append(svgEl("text", { x: W, y: H - 4, "text-anchor": "end" }, label));
}

const niceNumber = (v) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2));
const plotX = (fraction) => LEFT + fraction * (W - LEFT);
const plotY = (value, yMax) => H - BOTTOM - (value / yMax) * (H - BOTTOM - TOP);

// values: one number per equal slice of the hour, oldest first.
export function barChart(svg, values) {
  const yMax = Math.max(...values, 0) || 1;
  frame(svg, yMax, "now");
  const width = (W - LEFT) / values.length;
  values.forEach((value, i) => {
    if (value <= 0) return;
    const y = plotY(value, yMax);
    svg.append(svgEl("rect", { class: "bar", x: plotX(i / values.length) + 1, y,
      width: Math.max(width - 2, 1), height: H - BOTTOM - y }));
  });
}

// points: [{at: seconds ago (0..3600), value}], any order.
export function lineChart(svg, points) {
  const sorted = [...points].sort((a, b) => b.ago - a.ago);
  const yMax = Math.max(...sorted.map((p) => p.value), 0) || 1;
  frame(svg, yMax, "now");
  if (!sorted.length) {
    svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no payments sent in this hour"));
    return;
  }
  const xy = sorted.map((p) => [plotX(1 - p.ago / 3600), plotY(p.value, yMax)]);
  svg.append(svgEl("polyline", { class: "line", points: xy.map(([x, y]) => `${x},${y}`).join(" ") }));
  for (const [x, y] of xy) svg.append(svgEl("circle", { class: "dot", cx: x, cy: y, r: 2.5 }));
}

// Payments (each with at_ms) into 60 one-minute slices of the last hour, as payments per second.
export function paymentsPerSecond(payments, nowMs) {
  const slices = new Array(60).fill(0);
  for (const payment of payments) {
    const ago = nowMs - payment.at_ms;
    if (ago < 0 || ago >= 3600_000) continue;
    slices[59 - Math.floor(ago / 60_000)] += 1 / 60;
  }
  return slices;
}

// The node's cumulative latency histogram samples into the mean latency (ms) between samples.
export function latencyPoints(samples, nowSeconds) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const count = samples[i].count - samples[i - 1].count;
    if (count <= 0) continue;
    const mean = ((samples[i].sum - samples[i - 1].sum) / count) * 1000;
    points.push({ ago: nowSeconds - samples[i].at, value: mean });
  }
  return points;
}

// Lines over evenly spaced points (a channel's balances after each audit entry), oldest first.
// series: [{name, values: [number]}]; each line gets the class `line <name>`.
export function historyChart(svg, series) {
  const all = series.flatMap((s) => s.values);
  const yMax = Math.max(...all, 0) || 1;
  frame(svg, yMax, "now");
  svg.querySelectorAll("text")[2].textContent = "first";
  if (!all.length) {
    svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "nothing in this channel's audit trail yet"));
    return;
  }
  for (const { name, values } of series) {
    const step = values.length > 1 ? 1 / (values.length - 1) : 0;
    const xy = values.map((v, i) => [plotX(values.length > 1 ? i * step : 0.5), plotY(v, yMax)]);
    svg.append(svgEl("polyline", { class: `line ${name}`, points: xy.map(([x, y]) => `${x},${y}`).join(" ") }));
    for (const [x, y] of xy) svg.append(svgEl("circle", { class: `dot ${name}`, cx: x, cy: y, r: 2.5 }));
  }
}
