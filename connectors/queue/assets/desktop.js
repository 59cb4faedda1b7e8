// The agent desktop: sign in, availability, and the screen pops of the
// handoffs offered to this agent or held by them, pushed by the server
// (Server-Sent Events). An agent may hold several chats at once: each
// offer and each contact has a tab, and the selected one's pop (with its
// chat pane) fills the work area. All text is set through textContent:
// the customer's words are untrusted.
"use strict";

let source = null;
let view = null;
/** The handoff whose tab is selected, or null. */
let selected = null;
/** handoff id + phase shown now; the pop is rebuilt only when it changes. */
let shownKey = null;
/** The context the shown pop was drawn with (see render). */
let shownContextKey = null;
/** Revealed sensitive values, by "handoff/index"; kept across updates. */
const revealed = new Map();

const $ = (id) => document.getElementById(id);

function announce(text) { $("announcer").textContent = text; }

/** Shows a failed action to sighted users (the toast is also an alert region). */
let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.remove("hidden");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.add("hidden"), 6000);
}

function signedOut(message) {
  if (source) source.close();
  source = null;
  view = null;
  selected = null;
  shownKey = null;
  shownContextKey = null;
  $("desk").classList.add("hidden");
  $("who").classList.add("hidden");
  $("signin").classList.remove("hidden");
  $("signin-error").textContent = message || "";
  $("agent-id").focus();
}
onSignedOut = () => signedOut("Your session ended; sign in again.");

function connect() {
  if (desk.role !== "agent") {
    // Supervisors and admins take no handoffs: their page is the supervisor view.
    window.location.assign("/supervisor");
    return;
  }
  $("signin").classList.add("hidden");
  $("desk").classList.remove("hidden");
  $("who").classList.remove("hidden");
  // The cookie goes with the stream: nothing secret in the URL.
  source = new EventSource("/api/agent/events");
  source.addEventListener("view", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    // CLOSED means the server refused the session (it ended or expired).
    if (source && source.readyState === EventSource.CLOSED) signedOut("Your session ended; sign in again.");
  });
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    await signIn($("agent-id").value.trim(), $("password").value);
    $("password").value = "";
    connect();
  } catch (error) {
    $("signin-error").textContent = error.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  await signOut();
  signedOut();
});

for (const state of ["available", "away"]) {
  $(`state-${state}`).addEventListener("click", async () => {
    try { await api("PUT", "/api/agent/state", { state }); } catch (error) { toast(error.message); }
  });
}

function render(next) {
  view = next;
  syncClock(view.now);
  const agent = view.agent;
  $("agent-label").textContent = agent.name;
  $("state-dot").className = `state-dot state-${agent.state}`;
  $("state-available").setAttribute("aria-pressed", String(agent.state === "available"));
  $("state-away").setAttribute("aria-pressed", String(agent.state === "away"));
  $("state-available").disabled = agent.state === "busy";
  $("state-away").disabled = agent.state === "busy";
  $("waiting").textContent = String(view.waiting);
  $("my-state").textContent = agent.state;
  $("my-since").setAttribute("data-since", agent.state_since);
  $("my-skills").textContent = agent.skills.join(", ") || "—";
  $("my-contact").textContent = agent.contact || "—";
  const chats = view.connected.filter((c) => c.channel === "chat").length;
  $("my-chats").textContent = `${chats} of ${view.chat_capacity}`;

  const held = conversations();
  const newOffers = view.offers.filter((o) => !knownOffers.has(o.handoff_id));
  knownOffers.clear();
  for (const offer of view.offers) knownOffers.add(offer.handoff_id);
  // Keep the agent where they are (typing in one chat, a new offer does not
  // take the screen away); pick another tab only when theirs is gone.
  if (!held.some((c) => c.contact.handoff_id === selected)) {
    const next = view.offers[0] || view.connected[0];
    selected = next ? next.handoff_id : null;
  }
  renderTabs();
  const shown = held.find((c) => c.contact.handoff_id === selected);
  const contact = shown && shown.contact;
  const connected = Boolean(shown && shown.connected);
  const key = contact ? `${contact.handoff_id}/${connected ? "connected" : "offered"}` : `idle/${agent.state}`;
  // What the pop shows of the context: the runtime may add to it while the
  // offer is open (live context), and the pop is drawn again when it does.
  const shownContext = contact
    ? JSON.stringify([contact.summary, contact.transcript, contact.entities, contact.agent_notes])
    : "";
  if (key === shownKey && contact && !connected && shownContext !== shownContextKey) {
    shownContextKey = shownContext;
    replace($("work"), pop(contact, false));
    announce("The AI added to this handoff's context");
  } else if (key !== shownKey) {
    shownKey = key;
    shownContextKey = shownContext;
    if (connected) {
      replace($("work"), pop(contact, true));
      attachChat(contact.handoff_id);
      if (contact.channel !== "chat") $("disposition").focus();
    } else if (contact) {
      replace($("work"), pop(contact, false));
      $("accept").focus();
    } else {
      replace($("work"), idle(agent.state));
    }
  }
  // A callback's dial goes on while its pop stays (the wrap-up form being
  // typed is not drawn again): its line is updated in place.
  const callbackLine = document.getElementById("pop-callback");
  if (contact && contact.callback && callbackLine) {
    callbackLine.replaceWith(callbackInfo(contact.callback));
  }
  for (const offer of newOffers) announce(`New handoff: ${offer.summary}`);
  tickTimers();
}

/** Offers seen on the last view, to announce only new ones. */
const knownOffers = new Set();

/** Every contact of the agent: those they hold, then those offered. */
function conversations() {
  if (!view) return [];
  return view.connected.map((contact) => ({ contact, connected: true }))
    .concat(view.offers.map((contact) => ({ contact, connected: false })));
}

/** The tab strip: one tab per offer and per contact held. */
function renderTabs() {
  const held = conversations();
  const strip = $("conversations");
  strip.classList.toggle("hidden", held.length === 0);
  replace(strip, held.map(({ contact, connected }) => {
    const id = contact.handoff_id;
    const kind = !connected ? "Offer" : contact.channel === "chat" ? "Chat" : contact.callback ? "Callback" : "Call";
    const label = (contact.intent && contact.intent.name) || contact.summary || id;
    const unread = connected ? chatUnread(id) : 0;
    return h("button", {
      type: "button", role: "tab", class: `conversation-tab${connected ? "" : " offered"}`,
      "data-handoff": id, "aria-selected": String(id === selected),
      onclick: () => { selected = id; render(view); },
    }, h("span", { class: "tab-kind" }, kind), " ", h("span", { class: "tab-label" }, label.slice(0, 40)),
    unread ? h("span", { class: "badge unread", "aria-label": `${unread} unread` }, String(unread)) : null);
  }));
}

function idle(state) {
  const available = state === "available";
  return h("div", { class: "card idle", id: "idle" },
    available ? h("span", { class: "pulse", "aria-hidden": "true" }) : null,
    h("h2", {}, available ? "Ready for the next handoff" : "You are away"),
    h("p", {}, available
      ? "Handoffs appear here the moment one is offered to you, with everything the AI learned."
      : "Set yourself available to receive handoffs."));
}

function priorityBadge(priority) {
  const level = priority >= 7 ? "p-high" : priority >= 4 ? "p-mid" : "";
  return h("span", { class: `badge ${level}`, title: "Priority from 0 (normal) to 9 (most urgent)" }, `Priority ${priority}`);
}

function entityRow(contact, entity) {
  const id = `entity-${entity.index}`;
  const key = `${contact.handoff_id}/${entity.index}`;
  let value;
  if (!entity.sensitive) {
    value = h("td", { class: "entity-value", id }, entity.value);
  } else if (revealed.has(key)) {
    value = h("td", { class: "entity-value", id }, revealed.get(key), h("span", { class: "lock" }, "revealed · audited"));
  } else {
    const cell = h("td", { class: "entity-value", id });
    const button = h("button", {
      type: "button", class: "link reveal", "data-entity": entity.index,
      "aria-label": `Reveal ${entity.name} (recorded in the audit log)`,
    }, "Reveal");
    button.addEventListener("click", async () => {
      try {
        const result = await api("POST", `/api/handoffs/${encodeURIComponent(contact.handoff_id)}/reveal`, { entity: entity.index });
        revealed.set(key, result.value);
        replace(cell, result.value, h("span", { class: "lock" }, "revealed · audited"));
        announce(`${entity.name} revealed`);
      } catch (error) { toast(error.message); }
    });
    replace(cell, h("span", { class: "masked", "aria-label": "hidden" }, "••••••"), h("span", { class: "lock" }, "sensitive"), button);
    value = cell;
  }
  return h("tr", { class: "entity", "data-name": entity.name },
    h("th", { scope: "row" }, entity.name), value, h("td", { class: "hint" }, entity.kind || ""));
}

/** When a callback may be dialed, in the agent's local time. */
function callbackWindow(callback) {
  const at = (millis) => new Date(millis).toLocaleString();
  if (callback.window_start && callback.window_end) return `between ${at(callback.window_start)} and ${at(callback.window_end)}`;
  if (callback.window_end) return `until ${at(callback.window_end)}`;
  if (callback.window_start) return `from ${at(callback.window_start)}`;
  return "as soon as possible";
}

/** How far a callback's dial went, in words. */
function dialState(callback) {
  switch (callback.state) {
    case "scheduled": return "scheduled: its window has not opened";
    case "dialing": return `dialing the customer (attempt ${callback.dial_attempt} of ${callback.dial_attempts})`;
    case "connected": return "connected to the customer";
    default: return "Baton calls your phone first, then the customer";
  }
}

/** A callback's number (masked: Baton dials it, not the agent), window and dial state. */
function callbackInfo(callback) {
  return h("div", { class: "notice", id: "pop-callback", "data-state": callback.state },
    "Callback to ", h("strong", { id: "callback-number" }, callback.masked_number),
    ` · ${callbackWindow(callback)} · `, h("span", { id: "callback-state" }, dialState(callback)));
}

function pop(contact, connected) {
  const intent = contact.intent;
  const confidence = intent ? Math.round(intent.confidence * 100) : 0;
  const head = h("div", { class: `pop-head${connected ? " connected" : ""}` },
    h("h2", { id: "pop-title" }, connected ? "Connected" : (contact.callback ? "Callback request" : "Incoming handoff")),
    priorityBadge(contact.priority),
    h("span", { class: "badge" }, contact.channel || "conversation", contact.language ? ` · ${contact.language}` : ""),
    h("span", { class: "badge" }, `Queue ${contact.queue}`),
    connected && contact.connected_since
      ? h("span", { class: "badge timer", title: "Time since you accepted" }, "Connected ", h("span", { "data-since": contact.connected_since }, ""))
      : h("span", { class: "badge timer", title: "Time since the customer was queued" }, "Waiting ", h("span", { "data-since": contact.enqueued_at }, "")),
    !connected && contact.offer_until
      ? h("span", { class: "badge countdown timer", title: "Time left to accept" }, "Accept within ", h("span", { "data-until": contact.offer_until }, ""))
      : null);

  const body = h("div", { class: "pop-body" },
    contact.callback ? callbackInfo(contact.callback) : null,
    h("div", { class: "section-title" }, "Summary"),
    h("p", { class: "summary", id: "pop-summary" }, contact.summary || "No summary was provided."),
    h("div", { class: "grid2" },
      h("div", {},
        h("div", { class: "section-title" }, "Intent"),
        intent
          ? h("div", { id: "pop-intent" },
              h("span", { class: "intent-name" }, intent.name), ` · ${confidence}% confidence`,
              h("div", { class: "meter", role: "img", "aria-label": `${confidence}% confidence` }, h("span", { style: null, "data-width": confidence })))
          : h("div", { id: "pop-intent", class: "hint" }, "Unknown"),
        h("div", { class: "section-title" }, "Why the AI escalated"),
        contact.escalation
          ? h("div", { class: "escalation", id: "pop-escalation" }, h("strong", {}, contact.escalation.kind.replace(/_/g, " ")), contact.escalation.detail ? ` — ${contact.escalation.detail}` : "")
          : h("div", { class: "hint" }, "Not stated")),
      h("div", {},
        h("div", { class: "section-title" }, "What the AI tried"),
        contact.attempts.length
          ? h("ul", { class: "attempts", id: "pop-attempts" }, contact.attempts.map((a) =>
              h("li", {}, h("span", { class: `outcome ${a.outcome}` }, a.outcome.replace(/_/g, " ")), h("strong", {}, a.action), a.detail ? ` — ${a.detail}` : "")))
          : h("div", { class: "hint" }, "Nothing recorded"))),
    h("div", { class: "section-title" }, "Details"),
    contact.entities.length
      ? h("table", { id: "pop-entities" }, h("tbody", {}, contact.entities.map((e) => entityRow(contact, e))))
      : h("div", { class: "hint" }, "No details were captured."),
    contact.agent_notes ? [h("div", { class: "section-title" }, "Notes for you"), h("p", { id: "pop-notes" }, contact.agent_notes)] : null,
    h("div", { class: "section-title" }, "Transcript"),
    h("div", { class: "transcript", id: "transcript", tabindex: "0", "aria-label": "Transcript" },
      contact.transcript.length
        ? contact.transcript.map((t) => h("div", { class: `turn ${t.speaker}` }, h("span", { class: "who-said" }, t.speaker), t.text))
        : h("div", { class: "hint" }, "No transcript.")),
    connected && contact.channel === "chat"
      ? h("div", { class: "chat-slot", id: "chat-slot", "data-handoff": contact.handoff_id })
      : null,
    contact.omitted_fields.length
      ? h("div", { class: "notice" }, `Left out to fit the size limit: ${contact.omitted_fields.join(", ")}.`,
          contact.screen_pop_url ? [" ", h("a", { href: contact.screen_pop_url, target: "_blank", rel: "noopener noreferrer" }, "Open the full context")] : null)
      : null,
    connected ? connectedPanel(contact) : offerActions(contact));

  const card = h("article", { class: "card pop", id: "pop", "aria-labelledby": "pop-title", "data-handoff": contact.handoff_id, "data-traceparent": contact.traceparent }, head, body);
  // The meter's width is set from script (CSP forbids inline styles).
  for (const bar of card.querySelectorAll("[data-width]")) bar.style.width = `${bar.dataset.width}%`;
  return card;
}

function offerActions(contact) {
  const id = encodeURIComponent(contact.handoff_id);
  return h("div", { class: "actions" },
    h("button", { type: "button", class: "accept", id: "accept", onclick: () => act(`/api/handoffs/${id}/accept`) }, "Accept", h("kbd", {}, "A")),
    h("button", { type: "button", class: "decline", id: "decline", onclick: () => act(`/api/handoffs/${id}/decline`) }, "Decline", h("kbd", {}, "D")));
}

async function act(path, body) {
  try { await api("POST", path, body); } catch (error) { toast(error.message); }
}

function connectedPanel(contact) {
  const id = encodeURIComponent(contact.handoff_id);
  const form = h("form", { id: "wrap-up-form", class: "actions", "aria-label": "Wrap-up" },
    h("div", { style: null, class: "wrap-fields" },
      contact.callback
        ? h("div", { class: "notice" }, "Baton calls your phone, then the customer; wrap up when the call ends.")
        : (view.agent.contact
          ? h("div", { class: "notice" }, "Your voice contact address: ", h("strong", {}, view.agent.contact))
          : null),
      h("label", { for: "disposition" }, "Disposition"),
      h("select", { id: "disposition", required: true },
        ["resolved", "follow-up needed", "escalated", "callback completed", "no action"].map((d) => h("option", { value: d }, d))),
      h("label", { for: "notes" }, "Notes"),
      h("textarea", { id: "notes", rows: 3, maxlength: 4096, placeholder: "What happened, what is next" }),
      // The handoff itself, one click each: what Baton exists to improve.
      ...JUDGEMENTS.map(([name, question]) => judgementField(name, question)),
      // Hand-back: the customer goes back to the AI with this instruction
      // (not for a callback: that customer is on the agent's own line).
      contact.callback ? null : h("label", { for: "instruction" }, "Instruction for the AI (when returning the customer)"),
      contact.callback ? null : h("textarea", { id: "instruction", rows: 2, maxlength: 4096, placeholder: "e.g. customer verified; finish the address change" }),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "finish" }, "Finish wrap-up"),
        contact.callback ? null : h("button", { type: "button", id: "return-to-ai", onclick: () =>
          act(`/api/handoffs/${id}/hand-back`, { disposition: $("disposition").value, notes: $("notes").value, instruction: $("instruction").value }) },
        "Return to AI"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(`/api/handoffs/${id}/wrap-up`, { disposition: $("disposition").value, notes: $("notes").value, ...judgements() });
  });
  return form;
}

const JUDGEMENTS = [
  ["context_sufficient", "Did the handoff tell you what you needed?"],
  ["customer_repeated", "Did the customer have to repeat anything?"],
  ["escalation_needed", "Did this customer need a human?"],
];

// Yes and No as two radio buttons; neither checked is "not answered".
function judgementField(name, question) {
  const choice = (value, label) => h("label", { class: "choice" },
    h("input", { type: "radio", name, id: `${name}-${value}`, value }), label);
  return h("fieldset", { class: "judgement", id: name },
    h("legend", {}, question), choice("yes", "Yes"), choice("no", "No"));
}

// The answered judgements, as the wrap-up request takes them.
function judgements() {
  const answered = {};
  for (const [name] of JUDGEMENTS) {
    const checked = document.querySelector(`input[name=${name}]:checked`);
    if (checked) answered[name] = checked.value === "yes";
  }
  return answered;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName)) return;
  const key = event.key.toLowerCase();
  if (key === "a" && $("accept")) { event.preventDefault(); $("accept").click(); }
  else if (key === "d" && $("decline")) { event.preventDefault(); $("decline").click(); }
  else if (key === "r") {
    const next = document.querySelector("button.reveal");
    if (next) { event.preventDefault(); next.click(); }
  }
});

currentSession().then((found) => { if (found) connect(); else $("agent-id").focus(); },
  () => $("agent-id").focus());
