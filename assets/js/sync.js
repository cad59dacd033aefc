// The sync panel in the sidebar: cloud sync's state (a coloured dot), the tours waiting, the last
// success and the last error in plain words, and for admins "Sync now" and "Retry quarantined".
// Polls /api/v1/sync/status every 15 s while the page is visible.

import { api } from "./api.js";
import { h } from "./dom.js";
import { ago, number } from "./format.js";

const POLL_MS = 15000;
const AFTER_ACTION_MS = 1500;

const words = {
  disabled: "Off",
  idle: "Up to date",
  sending: "Sending…",
  retrying: "Retrying",
  stopped: "Stopped",
};

/** A unix-ms number or an ISO text as an ISO text (format.js reads ISO). */
function iso(value) {
  if (value === null || value === undefined || value === "") return null;
  return typeof value === "number" ? new Date(value).toISOString() : value;
}

export function mount(panel, me) {
  const admin = me && me.role === "admin";
  const dot = h("span", { class: "sync-dot", "aria-hidden": "true" });
  const state = h("span", { class: "sync-state", "data-field": "state" });
  const facts = h("div", { class: "sync-facts" });
  const error = h("p", { class: "sync-error", "data-field": "error", hidden: true });
  const note = h("p", { class: "sync-note", role: "status" });
  const now = h("button", { class: "btn small", type: "button", "data-action": "now", onclick: () => act("/api/v1/sync/now") }, "Sync now");
  const retry = h("button", { class: "btn small", type: "button", "data-action": "retry", onclick: () => act("/api/v1/sync/retry-quarantined") }, "Retry quarantined");
  const actions = h("div", { class: "sync-actions", hidden: true }, now, retry);
  panel.replaceChildren(h("div", { class: "sync-head" }, dot, h("span", { class: "sync-title" }, "Cloud sync"), state), facts, error, actions, note);

  let status = null;
  let stopped = false;
  let timer = null;
  let busy = false;

  /** Fetches the status now (never two at once), then again in 15 s. */
  async function poll() {
    if (busy) return;
    busy = true;
    clearTimeout(timer);
    if (!document.hidden) {
      try {
        status = (await api("/api/v1/sync/status")).data;
        if (!stopped) render();
      } catch (e) {
        if (e.status !== 401 && !stopped) showUnknown(e.message);
      }
    }
    busy = false;
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function showUnknown(message) {
    panel.dataset.state = "unknown";
    panel.hidden = false;
    state.textContent = "Unknown";
    facts.replaceChildren();
    error.textContent = message;
    error.hidden = false;
    actions.hidden = true;
  }

  function render() {
    const kind = status.state || "unknown";
    panel.dataset.state = kind;
    panel.hidden = false;
    state.textContent = words[kind] || kind;
    if (kind === "disabled") {
      facts.replaceChildren(h("span", { class: "muted" }, "Tours stay on this appliance only."));
      error.hidden = true;
      actions.hidden = true;
      panel.title = status.configured
        ? "Cloud sync is switched off ([sync] enabled = false): completed tours are kept in the queue, nothing is sent."
        : "Cloud sync is not configured: set url and key in the [sync] section of nexero.toml to send completed tours to the cloud.";
      return;
    }
    const waiting = status.queue_depth || 0;
    const lastSuccess = iso(status.last_success);
    const quarantined = status.quarantined || 0;
    facts.replaceChildren(
      ...[
        h("span", { "data-field": "last-success", "data-at": lastSuccess || "" }, lastSuccess ? `Last sent ${ago(lastSuccess)}` : "Nothing sent yet"),
        h("span", { "data-field": "queue" }, waiting ? `${number(waiting)} ${waiting === 1 ? "tour" : "tours"} waiting` : "Nothing waiting"),
        quarantined ? h("span", { class: "sync-quarantined", "data-field": "quarantined" }, `${number(quarantined)} ${quarantined === 1 ? "row" : "rows"} refused by the cloud`) : null,
      ].filter(Boolean),
    );
    // The plain words come first; the technical detail after " — " is in the tooltip.
    const message = status.last_error || "";
    error.textContent = capitalise(message.split(" — ")[0]);
    error.title = message;
    error.hidden = !message || kind === "idle";
    // Narrow layouts show only the dot: the title says the rest.
    const where = status.target === "postgres" ? "PostgreSQL" : "Supabase / PostgREST";
    const lines = [...facts.children].map((node) => node.textContent);
    if (!error.hidden) lines.push(error.textContent);
    panel.title = `Cloud sync to ${where}: ${words[kind] || kind}\n${lines.join("\n")}`;
    actions.hidden = !admin;
    retry.hidden = !quarantined;
  }

  async function act(path) {
    now.disabled = retry.disabled = true;
    note.textContent = "";
    try {
      const answer = await api(path, { method: "POST" });
      note.textContent = capitalise(answer.message || "Started");
    } catch (e) {
      note.textContent = e.message;
    } finally {
      now.disabled = retry.disabled = false;
      setTimeout(() => !stopped && poll(), AFTER_ACTION_MS);
      setTimeout(() => (note.textContent = ""), 8000);
    }
  }

  /** "Last sent 2 min ago" stays true between polls. */
  const ticker = setInterval(() => {
    const node = facts.querySelector("[data-field=last-success]");
    if (node && node.dataset.at) node.textContent = `Last sent ${ago(node.dataset.at)}`;
  }, 30000);
  const onVisible = () => !document.hidden && poll();
  document.addEventListener("visibilitychange", onVisible);
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(ticker);
    document.removeEventListener("visibilitychange", onVisible);
  };
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
