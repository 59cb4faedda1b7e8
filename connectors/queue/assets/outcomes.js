// The supervisor's "Outcomes, last 24 hours" panel: the control service's
// figures (GET /api/supervisor/outcomes), refreshed every 30 seconds and on
// the Refresh button, with a chart of the day's hours drawn as SVG.
"use strict";

const OUTCOMES_REFRESH_MS = 30000;
const SVG_NS = "http://www.w3.org/2000/svg";
let outcomesTimer = null;

/** Like h(), for SVG elements. */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** 0.4567 → "46%"; unset → "—". */
function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(rate * 100)}%`;
}

/** Seconds → "4.2 s" under a minute, else "1:15"; unset → "—". */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : clock(seconds);
}

/** 14:05 in the browser's time zone. */
function hourLabel(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function renderFigures(total) {
  setText("outcomes-handoffs", String(total.handoffs));
  setText("outcomes-reached-human", String(total.reached_human));
  setText("outcomes-abandoned", String(total.abandoned));
  setText("outcomes-failed", String(total.failed));
  setText("outcomes-abandon-rate", percent(total.abandon_rate));
  setText("outcomes-time-p50", duration(total.time_to_human_p50_seconds));
  setText("outcomes-time-p95", duration(total.time_to_human_p95_seconds));
  const judged = (counts) => counts.rate === null || counts.rate === undefined
    ? "—" : `${percent(counts.rate)} (${counts.yes} of ${counts.yes + counts.no})`;
  setText("outcomes-context-sufficient-rate", judged(total.context_sufficient));
  setText("outcomes-repeat-rate", judged(total.customer_repeated));
  setText("outcomes-escalation-needed-rate", judged(total.escalation_needed));
}

function renderGroups(groups) {
  const rows = groups.map((g) =>
    h("tr", { "data-route": g.route, "data-trigger": g.trigger, "data-connector": g.connector },
      h("td", {}, g.route || "(direct target)"),
      h("td", {}, g.trigger.replace(/_/g, " ")),
      h("td", {}, g.connector || "—"),
      h("td", { class: "num" }, String(g.figures.handoffs)),
      h("td", { class: "num" }, String(g.figures.reached_human)),
      h("td", { class: "num" }, String(g.figures.abandoned)),
      h("td", { class: "num" }, String(g.figures.failed)),
      h("td", { class: "num" }, percent(g.figures.abandon_rate)),
      h("td", { class: "num" }, duration(g.figures.time_to_human_p50_seconds)),
      h("td", { class: "num" }, percent(g.figures.context_sufficient.rate))));
  replace(document.getElementById("outcomes-groups"),
    rows.length ? rows : [h("tr", {}, h("td", { colspan: 10 }, "No handoff in the last 24 hours."))]);
}

// The chart's frame, in viewBox units: bars between the axes.
const CHART = { width: 720, height: 200, left: 40, right: 10, top: 12, bottom: 28 };

function renderChart(hours) {
  const chart = document.getElementById("outcomes-chart");
  const plotWidth = CHART.width - CHART.left - CHART.right;
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const base = CHART.top + plotHeight;
  const most = Math.max(1, ...hours.map((hour) => hour.handoffs));
  const slot = plotWidth / hours.length;
  const barWidth = Math.max(2, slot - 4);
  const y = (count) => (count / most) * plotHeight;
  const parts = [
    svg("line", { class: "axis", x1: CHART.left, y1: base, x2: CHART.width - CHART.right, y2: base }),
    svg("line", { class: "axis", x1: CHART.left, y1: CHART.top, x2: CHART.left, y2: base }),
  ];
  // The y axis: 0, the busiest hour, and the middle when it is a whole number.
  const ticks = [0, most];
  if (most >= 2 && most % 2 === 0) ticks.push(most / 2);
  for (const tick of ticks) {
    const at = base - y(tick);
    parts.push(svg("line", { class: "grid", x1: CHART.left, y1: at, x2: CHART.width - CHART.right, y2: at }));
    parts.push(svg("text", { class: "tick y-tick", x: CHART.left - 6, y: at + 4, "text-anchor": "end" }, String(tick)));
  }
  hours.forEach((hour, i) => {
    const x = CHART.left + i * slot + (slot - barWidth) / 2;
    const height = y(hour.handoffs);
    const abandoned = y(hour.abandoned);
    const label = `${hourLabel(hour.since)}–${hourLabel(hour.until)}: ${hour.handoffs} handoffs, ${hour.abandoned} abandoned`;
    parts.push(svg("g", { class: "hour", "data-hour": i },
      svg("title", {}, label),
      // The whole bar, then its abandoned part over its foot.
      svg("rect", { class: "bar", x, y: base - height, width: barWidth, height,
        "data-handoffs": hour.handoffs, "data-abandoned": hour.abandoned }),
      svg("rect", { class: "bar-abandoned", x, y: base - abandoned, width: barWidth, height: abandoned })));
  });
  // The x axis: the start of every sixth hour, and now at the end.
  for (let i = 0; i < hours.length; i += 6) {
    parts.push(svg("text", { class: "tick x-tick", x: CHART.left + i * slot, y: base + 18, "text-anchor": "start" },
      hourLabel(hours[i].since)));
  }
  parts.push(svg("text", { class: "tick x-tick", x: CHART.width - CHART.right, y: base + 18, "text-anchor": "end" }, "now"));
  replace(chart, parts);

  const busiest = hours.reduce((best, hour) => (hour.handoffs > best.handoffs ? hour : best), hours[0]);
  const total = hours.reduce((sum, hour) => sum + hour.handoffs, 0);
  setText("outcomes-chart-summary", total === 0
    ? "No handoff in the last 24 hours."
    : `${total} handoffs over 24 hours; the busiest hour, ${hourLabel(busiest.since)}–${hourLabel(busiest.until)}, had ${busiest.handoffs} (${busiest.abandoned} abandoned).`);
  replace(document.getElementById("outcomes-hours"), hours.map((hour) =>
    h("tr", {},
      h("th", { scope: "row" }, `${hourLabel(hour.since)}–${hourLabel(hour.until)}`),
      h("td", { class: "num" }, String(hour.handoffs)),
      h("td", { class: "num" }, String(hour.reached_human)),
      h("td", { class: "num" }, String(hour.abandoned)),
      h("td", { class: "num" }, String(hour.failed)))));
}

function renderOutcomes(view) {
  const body = document.getElementById("outcomes-body");
  const tenant = document.getElementById("outcomes-tenant");
  if (!view.configured) {
    body.classList.add("hidden");
    tenant.classList.add("hidden");
    setText("outcomes-status",
      "Outcomes are not configured: the desk needs an [outcomes] section (the control service's endpoint and a supervisor API key).");
    return;
  }
  tenant.textContent = `tenant ${view.tenant}`;
  tenant.classList.remove("hidden");
  renderFigures(view.total);
  renderGroups(view.groups);
  renderChart(view.hours);
  body.classList.remove("hidden");
  const read = new Date(view.until).toLocaleTimeString();
  setText("outcomes-status", view.truncated
    ? `Read at ${read}. More handoffs than one answer counts: the figures cover the oldest of them.`
    : `Read at ${read}.`);
}

async function loadOutcomes() {
  const button = document.getElementById("outcomes-refresh");
  button.disabled = true;
  try {
    renderOutcomes(await api("GET", "/api/supervisor/outcomes"));
  } catch (error) {
    // The last figures stay; the status says why they are not fresh.
    setText("outcomes-status", `Could not read the outcomes: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function startOutcomes() {
  stopOutcomes();
  loadOutcomes();
  outcomesTimer = setInterval(loadOutcomes, OUTCOMES_REFRESH_MS);
}

function stopOutcomes() {
  if (outcomesTimer !== null) clearInterval(outcomesTimer);
  outcomesTimer = null;
}

document.getElementById("outcomes-refresh").addEventListener("click", loadOutcomes);
