// Shared helpers of the desktop and the supervisor view. Every piece of
// text reaches the page through textContent (never innerHTML): the
// customer's words are untrusted.
"use strict";

/** h("div", {class: "x"}, "text", child…): builds an element; strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** 75 → "1:15"; 3700 → "1:01:40". */
function clock(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const secs = String(seconds % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

/** Server time (ms) now, from the offset measured on the last view. */
let serverOffset = 0;
function syncClock(serverNow) { serverOffset = serverNow - Date.now(); }
function serverNow() { return Date.now() + serverOffset; }

/** Elements with data-since (ms) show the time elapsed; data-until, the time left. */
function tickTimers() {
  const now = serverNow();
  for (const el of document.querySelectorAll("[data-since]")) {
    el.textContent = clock((now - Number(el.dataset.since)) / 1000);
  }
  for (const el of document.querySelectorAll("[data-until]")) {
    el.textContent = clock((Number(el.dataset.until) - now) / 1000);
  }
}
setInterval(tickTimers, 1000);

function replace(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c));
}

// ---- the session ----
// The session id lives in an HttpOnly cookie that no script reads. The page
// keeps only what the server tells it: who is signed in and the CSRF token
// it sends back with every change (X-CSRF-Token).

/** {name, display_name, role, tenants, csrf_token}, or null when signed out. */
let desk = null;

/** Called when the server says the session ended (401). */
let onSignedOut = () => {};

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (desk && method !== "GET") headers["X-CSRF-Token"] = desk.csrf_token;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== "/api/sessions") {
    desk = null;
    onSignedOut();
    throw new Error("Your session ended; sign in again.");
  }
  if (!response.ok) {
    let message = `${response.status}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

/** The session this browser has, if any (after a reload or in a new tab). */
async function currentSession() {
  const response = await fetch("/api/sessions", { credentials: "same-origin" });
  desk = response.ok ? await response.json() : null;
  return desk;
}

async function signIn(name, password) {
  desk = null;
  desk = await api("POST", "/api/sessions", { name, password });
  return desk;
}

async function signOut() {
  try { await api("DELETE", "/api/sessions"); } catch (_) { /* signed out anyway */ }
  desk = null;
}

// ---- sign-in through the identity provider ----
// With an OIDC issuer configured, the sign-in card offers it; with local
// accounts turned off, the password form is hidden.
(async () => {
  const card = document.getElementById("signin");
  if (!card) return;
  let options;
  try {
    const response = await fetch("/api/sign-in-options", { credentials: "same-origin" });
    if (!response.ok) return;
    options = await response.json();
  } catch (_) { return; }
  if (options.oidc) {
    const back = window.location.pathname.startsWith("/supervisor") ? "?to=supervisor" : "";
    card.append(h("div", { class: "actions" },
      h("a", { id: "sign-in-oidc", class: "button primary", href: options.oidc.url + back },
        `Sign in with ${options.oidc.name}`)));
  }
  if (!options.local) {
    const form = document.getElementById("signin-form");
    if (form) form.classList.add("hidden");
  }
})();
