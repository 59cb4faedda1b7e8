// The chat pane: one panel per chat conversation of the signed-in agent's
// contacts, several at once. Every pane is kept up to date; the one of the
// selected tab sits in its screen pop (under the context and the AI's
// history), the others count what the customer wrote meanwhile. Text only
// ever goes in through textContent.
"use strict";

const chatPanes = new Map(); // handoff id -> pane (see openPane)
const CHAT_POLL_MS = 700;

/** The customer's messages not seen yet in the chat of `handoffId`. */
function chatUnread(handoffId) {
  const pane = chatPanes.get(handoffId);
  return pane ? pane.unread : 0;
}

/** Puts the pane of `handoffId` in its pop's slot, when both are there. */
function attachChat(handoffId) {
  const slot = document.getElementById("chat-slot");
  const pane = chatPanes.get(handoffId);
  if (!slot || !pane || slot.dataset.handoff !== handoffId || pane.root.parentNode === slot) return;
  slot.appendChild(pane.root);
  if (pane.unread) {
    pane.unread = 0;
    if (pane.last > 0 && !pane.ended) markRead(handoffId, pane);
    renderTabs();
  }
}

function markRead(handoffId, pane) {
  api("POST", `/api/chats/${encodeURIComponent(handoffId)}/read`, { through: pane.last }).catch(() => {});
}

function chatElement(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function newMessageId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "desk-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function openPane(handoffId) {
  const root = chatElement("article", "card chat");
  root.dataset.handoff = handoffId;
  root.appendChild(chatElement("div", "section-title", "Chat with the customer"));
  const log = chatElement("ol", "chat-log");
  log.setAttribute("aria-live", "polite");
  const status = chatElement("div", "hint chat-status");
  const pending = chatElement("ul", "chat-pending");
  const form = chatElement("form", "chat-form");
  const input = chatElement("textarea", "chat-input");
  input.maxLength = 4096;
  input.rows = 2;
  input.setAttribute("aria-label", "Message to the customer");
  const send = chatElement("button", "primary chat-send", "Send");
  send.type = "submit";
  form.append(input, send);
  root.append(log, pending, status, form);
  const pane = { root, log, pending, status, input, last: 0, unread: 0, typing: false, typingTimer: null, ended: false };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || pane.ended) return;
    input.value = "";
    try {
      await api("POST", `/api/chats/${encodeURIComponent(handoffId)}/messages`, { id: newMessageId(), text });
    } catch (error) {
      pane.status.textContent = "Not sent: " + error.message;
      input.value = text;
    }
  });
  input.addEventListener("input", () => {
    if (!pane.typing) {
      pane.typing = true;
      api("POST", `/api/chats/${encodeURIComponent(handoffId)}/typing`, { active: true }).catch(() => {});
    }
    clearTimeout(pane.typingTimer);
    pane.typingTimer = setTimeout(() => {
      pane.typing = false;
      api("POST", `/api/chats/${encodeURIComponent(handoffId)}/typing`, { active: false }).catch(() => {});
    }, 2000);
  });
  chatPanes.set(handoffId, pane);
  return pane;
}

async function refreshPane(handoffId, pane) {
  const view = await api("GET", `/api/chats/${encodeURIComponent(handoffId)}?after=${pane.last}`);
  const shown = pane.root.isConnected;
  let unread = 0;
  for (const entry of view.entries) {
    if (entry.sequence <= pane.last) continue;
    const item = chatElement("li", "chat-entry chat-" + entry.author);
    item.dataset.sequence = String(entry.sequence);
    item.dataset.id = entry.id;
    const who = entry.author === "customer" ? "Customer" : entry.author === "agent" ? "You" : "Baton";
    item.appendChild(chatElement("span", "chat-who", who + ": "));
    item.appendChild(chatElement("span", "chat-text", entry.text));
    for (const attachment of entry.attachments) {
      const link = chatElement("a", "chat-attachment", attachment.name || attachment.media_type);
      if (/^https?:\/\//.test(attachment.url)) link.href = attachment.url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      item.appendChild(link);
    }
    pane.log.appendChild(item);
    pane.last = entry.sequence;
    if (!shown && entry.author === "customer") unread += 1;
  }
  replace(pane.pending, view.pending.map((p) => chatElement("li", "chat-entry chat-agent chat-unsent", "You (sending): " + p.text)));
  pane.ended = view.ended;
  pane.input.disabled = view.ended;
  pane.status.textContent = view.ended
    ? "The conversation is over."
    : view.customer_typing ? "The customer is typing…" : (view.connected ? "" : "Reconnecting…");
  // Read receipts only for what is on the agent's screen.
  if (shown && view.entries.length > 0 && !view.ended) markRead(handoffId, pane);
  if (unread) {
    pane.unread += unread;
    renderTabs();
  }
}

async function pollChats() {
  try {
    if (desk && desk.role === "agent") {
      const mine = await api("GET", "/api/chats");
      for (const handoffId of mine) {
        const pane = chatPanes.get(handoffId) || openPane(handoffId);
        attachChat(handoffId);
        await refreshPane(handoffId, pane);
      }
      for (const [handoffId, pane] of chatPanes) {
        if (!mine.includes(handoffId)) {
          pane.root.remove();
          chatPanes.delete(handoffId);
        }
      }
    }
  } catch (_) {
    // The next poll tries again; the session handling shows sign-in errors.
  }
  setTimeout(pollChats, CHAT_POLL_MS);
}

pollChats();
