// The supervisor view: queues, waiting handoffs, agents and the reveal
// audit, pushed by the server on every change.
"use strict";

function render(view) {
  syncClock(view.now);
  replace(document.getElementById("queues"), view.queues.map((q) =>
    h("div", { class: "card stat" },
      h("div", { class: "label" }, `Queue ${q.name}` + (q.priority ? ` · priority ${q.priority}` : "")),
      h("div", { class: "value" }, `${q.waiting} waiting`),
      h("div", { class: "label" }, `${q.agents_available} available · avg handle ${clock(q.average_handle_seconds)} · next wait ≈ ${clock(q.next_estimate_seconds)}`))));
  const contacts = view.contacts.map((c) =>
    h("tr", {},
      h("td", {}, c.handoff_id, c.callback ? h("span", { class: "badge" }, "callback") : null),
      h("td", {}, c.queue),
      h("td", {}, c.intent || "—"),
      h("td", {}, String(c.priority)),
      h("td", {}, c.phase),
      h("td", {}, c.agent || "—"),
      h("td", { "data-since": c.enqueued_at }, ""),
      h("td", {}, c.position ? `#${c.position} · ≈ ${clock(c.estimated_wait_seconds)}` : "—")));
  replace(document.getElementById("contacts"),
    contacts.length ? contacts : [h("tr", {}, h("td", { colspan: 8 }, "Nobody is waiting."))]);
  const agents = view.agents.map((a) =>
    h("tr", {},
      h("td", {}, a.name, h("div", { class: "hint" }, a.id)),
      h("td", {}, h("span", { class: `state-dot state-${a.state}`, "aria-hidden": "true" }), a.state),
      h("td", { "data-since": a.state_since }, ""),
      h("td", {}, a.skills.join(", ") || "—"),
      h("td", {}, a.contact || "—")));
  replace(document.getElementById("agents"),
    agents.length ? agents : [h("tr", {}, h("td", { colspan: 5 }, "No agent has signed in."))]);
  const audit = view.audit.map((e) =>
    h("tr", {},
      h("td", {}, new Date(e.at).toLocaleString()),
      h("td", {}, e.agent), h("td", {}, e.handoff_id), h("td", {}, e.subject)));
  replace(document.getElementById("audit"),
    audit.length ? audit : [h("tr", {}, h("td", { colspan: 4 }, "No reveals yet."))]);
  tickTimers();
}

const source = new EventSource("/api/supervisor/events");
const live = document.getElementById("live");
source.addEventListener("view", (event) => {
  live.textContent = "live";
  render(JSON.parse(event.data));
});
source.addEventListener("error", () => { live.textContent = "reconnecting…"; });
