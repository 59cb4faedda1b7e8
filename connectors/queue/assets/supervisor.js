// The supervisor view: queues, waiting handoffs, agents and the reveal
// audit of the supervisor's tenants, pushed by the server on every change.
"use strict";

/** A callback: its number masked, its window and how far the dial went. */
function callbackBadge(callback) {
  const at = (millis) => new Date(millis).toLocaleString();
  const window = callback.window_start || callback.window_end
    ? ` · ${callback.window_start ? at(callback.window_start) : "now"} – ${callback.window_end ? at(callback.window_end) : "open"}`
    : "";
  const state = callback.state === "dialing"
    ? `dialing ${callback.dial_attempt}/${callback.dial_attempts}`
    : callback.state;
  return h("span", { class: "badge callback", "data-state": callback.state },
    `callback ${callback.masked_number}${window} · ${state}`);
}

function render(view) {
  syncClock(view.now);
  replace(document.getElementById("queues"), view.queues.map((q) =>
    h("div", { class: "card stat" },
      h("div", { class: "label" }, `Queue ${q.tenant}/${q.name}` + (q.priority ? ` · priority ${q.priority}` : "")),
      h("div", { class: "value" }, `${q.waiting} waiting`),
      h("div", { class: "label" }, `${q.agents_available} available · avg handle ${clock(q.average_handle_seconds)} · next wait ≈ ${clock(q.next_estimate_seconds)}`))));
  const contacts = view.contacts.map((c) =>
    h("tr", {},
      h("td", {}, c.handoff_id, c.callback ? callbackBadge(c.callback) : null),
      h("td", {}, c.tenant),
      h("td", {}, c.queue),
      h("td", {}, c.intent || "—"),
      h("td", {}, String(c.priority)),
      h("td", {}, c.phase),
      h("td", {}, c.agent || "—"),
      h("td", { "data-since": c.enqueued_at }, ""),
      h("td", {}, c.position ? `#${c.position} · ≈ ${clock(c.estimated_wait_seconds)}` : "—")));
  replace(document.getElementById("contacts"),
    contacts.length ? contacts : [h("tr", {}, h("td", { colspan: 9 }, "Nobody is waiting."))]);
  // What the data policy let through to this desk, field by field.
  const disclosures = (view.disclosures || []).map((d) =>
    h("tr", { "data-handoff": d.handoff_id },
      h("td", {}, d.handoff_id, d.attempt > 1 ? h("span", { class: "badge" }, `attempt ${d.attempt}`) : null),
      h("td", {}, d.tenant),
      h("td", {}, d.route || "—"),
      h("td", {}, ...d.fields.map((f) =>
        h("span", { class: `badge form-${f.form}`, "data-field": f.field, "data-form": f.form }, `${f.field}: ${f.form}`))),
      h("td", {}, Object.entries(d.masked).map(([kind, count]) => `${kind} × ${count}`).join(", ") || "—")));
  replace(document.getElementById("disclosures"),
    disclosures.length ? disclosures : [h("tr", {}, h("td", { colspan: 5 }, "No disclosure recorded."))]);
  const agents = view.agents.map((a) =>
    h("tr", {},
      h("td", {}, a.name, h("div", { class: "hint" }, a.id)),
      h("td", {}, a.tenant),
      h("td", {}, h("span", { class: `state-dot state-${a.state}`, "aria-hidden": "true" }), a.state),
      h("td", { "data-since": a.state_since }, ""),
      h("td", {}, a.skills.join(", ") || "—"),
      h("td", {}, a.contact || "—")));
  replace(document.getElementById("agents"),
    agents.length ? agents : [h("tr", {}, h("td", { colspan: 6 }, "No agent has signed in."))]);
  const audit = view.audit.map((e) =>
    h("tr", {},
      h("td", {}, new Date(e.at).toLocaleString()),
      h("td", {}, e.tenant),
      h("td", {}, e.agent), h("td", {}, e.handoff_id), h("td", {}, e.subject)));
  replace(document.getElementById("audit"),
    audit.length ? audit : [h("tr", {}, h("td", { colspan: 5 }, "No reveals yet."))]);
  tickTimers();
}

const live = document.getElementById("live");
let source = null;

function showSignIn(message) {
  if (source) source.close();
  source = null;
  stopOutcomes();
  live.textContent = "signed out";
  document.getElementById("board").classList.add("hidden");
  document.getElementById("who").classList.add("hidden");
  document.getElementById("signin").classList.remove("hidden");
  document.getElementById("signin-error").textContent = message || "";
  document.getElementById("account").focus();
}
onSignedOut = () => showSignIn("Your session ended; sign in again.");

function watch() {
  if (desk.role === "agent") {
    showSignIn("This view is for supervisors; agents take handoffs on the agent desktop.");
    return;
  }
  document.getElementById("signin").classList.add("hidden");
  document.getElementById("board").classList.remove("hidden");
  document.getElementById("who").classList.remove("hidden");
  document.getElementById("supervisor-label").textContent =
    `${desk.display_name} · ${desk.tenants.join(", ")}`;
  live.textContent = "connecting…";
  startOutcomes();
  // The session cookie goes with the stream; the server sends only this
  // supervisor's tenants.
  source = new EventSource("/api/supervisor/events");
  source.addEventListener("view", (event) => {
    live.textContent = "live";
    render(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    if (source && source.readyState === EventSource.CLOSED) showSignIn("Your session ended; sign in again.");
    else live.textContent = "reconnecting…";
  });
}

document.getElementById("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  document.getElementById("signin-error").textContent = "";
  try {
    await signIn(document.getElementById("account").value.trim(), document.getElementById("password").value);
    document.getElementById("password").value = "";
    watch();
  } catch (error) {
    document.getElementById("signin-error").textContent = error.message;
  }
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  showSignIn();
});

currentSession().then((found) => { if (found) watch(); else showSignIn(); }, () => showSignIn());
