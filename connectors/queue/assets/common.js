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
