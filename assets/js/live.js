// Live: the tours in progress and the headsets seen in the last hour, fetched from the live
// state and fetched again on each event of the live feed (at most 4 times a second).

import { api } from "./api.js";
import { empty, errorBox, h, loaded } from "./dom.js";
import { ago, clock, duration, headset, number } from "./format.js";

const MIN_GAP_MS = 250;
const SAFETY_REFRESH_MS = 10000;
const REOPEN_MS = 3000;

export function mount(main) {
  const indicator = h("span", { class: "indicator", role: "status" }, "Connecting…");
  const error = errorBox();
  const tours = h("div");
  const headsets = h("div");
  const tourCount = h("span", { class: "count" });
  const headsetCount = h("span", { class: "count" });
  main.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Live"), h("p", {}, "Tours happening now, and the headsets seen in the last hour.")), indicator),
    error.node,
    h("section", { class: "section" }, h("h2", {}, "Tours in progress", tourCount), tours),
    h("section", { class: "section" }, h("h2", {}, "Headsets", headsetCount), headsets),
  );

  let state = null;
  let fetchedAt = 0;
  let stopped = false;
  let inFlight = false;
  let again = false;
  let lastFetch = 0;
  let timer = null;
  let source = null;

  async function fetchState() {
    inFlight = true;
    lastFetch = Date.now();
    try {
      state = (await api("/api/v1/live/state")).data;
      fetchedAt = Date.now();
      error.show(null);
      if (!stopped) render();
    } catch (e) {
      if (!stopped) error.show(e);
    } finally {
      inFlight = false;
      if (again && !stopped) {
        again = false;
        refresh();
      }
    }
  }

  /** Fetches the state soon: never two at once, never more often than every 250 ms. */
  function refresh() {
    if (stopped) return;
    if (inFlight) {
      again = true;
      return;
    }
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fetchState();
    }, Math.max(0, lastFetch + MIN_GAP_MS - Date.now()));
  }

  function setIndicator(kind, text) {
    indicator.className = `indicator ${kind}`;
    indicator.textContent = text;
  }

  function connect() {
    source = new EventSource("/api/v1/live");
    source.addEventListener("open", () => {
      setIndicator("live", "Live");
      refresh();
    });
    source.addEventListener("upload", refresh);
    source.addEventListener("tour_ended", refresh);
    source.addEventListener("error", () => {
      setIndicator("reconnecting", "Reconnecting…");
      // The browser retries by itself unless the answer was not a stream (signed out, or the
      // appliance restarting): then check the session (a 401 goes to sign in) and open again.
      if (source.readyState === EventSource.CLOSED && !stopped) {
        api("/api/v1/auth/me").catch(() => {});
        setTimeout(() => !stopped && connect(), REOPEN_MS);
      }
    });
  }

  /** The seconds a tour has run, now: the server's count plus the time since it was fetched. */
  function elapsed(tour) {
    return tour.seconds_so_far + (Date.now() - fetchedAt) / 1000;
  }

  function render() {
    const touring = state.headsets.filter((item) => item.tour);
    tourCount.textContent = touring.length ? String(touring.length) : "";
    headsetCount.textContent = state.headsets.length ? String(state.headsets.length) : "";
    tours.replaceChildren(
      touring.length
        ? h("div", { class: "grid tour-cards" }, touring.map(tourCard))
        : empty("No tours in progress right now.", "A tour shows up here as soon as a headset starts one."),
    );
    headsets.replaceChildren(
      state.headsets.length
        ? h("div", { class: "grid headset-cards" }, state.headsets.map(headsetCard))
        : empty("No headsets seen in the last hour.", "Headsets appear here when they connect to this appliance."),
    );
    loaded(main);
  }

  function tourCard(item) {
    const tour = item.tour;
    const current = [tour.current_view, tour.current_poi].filter(Boolean).join(" · ") || "Starting…";
    return h(
      "a",
      { class: "card tour-card", href: `/tours/${encodeURIComponent(tour.id)}`, "data-tour-id": tour.id },
      h("div", { class: "top" }, h("span", { class: "who", "data-field": "headset" }, headset(item.name, item.device_key)), tour.external_id ? h("span", { class: "mono sub" }, tour.external_id) : null),
      h("div", { class: "elapsed-row" }, h("span", { class: "elapsed", "data-field": "elapsed", "data-tour": tour.id }, duration(elapsed(tour))), h("span", { class: "sub" }, `since ${clock(tour.started_at)}`)),
      h("div", { class: "now" }, h("span", { class: "label" }, tour.current_zone ? `Now in ${tour.current_zone}` : "Now viewing"), h("span", { "data-field": "current", title: current }, current)),
      h("div", { class: "foot" }, h("span", {}, h("b", { "data-field": "events" }, number(tour.event_count)), tour.event_count === 1 ? " event" : " events"), h("span", { "data-seen": tour.last_event_at, "data-prefix": "Last event " }, `Last event ${ago(tour.last_event_at)}`)),
    );
  }

  function headsetCard(item) {
    return h(
      "div",
      { class: "card headset-card", "data-headset": item.device_key },
      h("div", { class: "name", title: item.device_key }, headset(item.name, item.device_key)),
      h("div", {}, h("span", { class: `pill ${item.state}`, "data-field": "state" }, item.state)),
      h("div", { class: "seen", "data-seen": item.last_seen_at, "data-prefix": "Last seen " }, `Last seen ${ago(item.last_seen_at)}`),
    );
  }

  /** Every second: the running times tick and "last seen" stays true, without a fetch. */
  function tick() {
    if (!state) return;
    const byId = new Map(state.headsets.filter((item) => item.tour).map((item) => [item.tour.id, item.tour]));
    for (const node of main.querySelectorAll("[data-field=elapsed]")) {
      const tour = byId.get(node.dataset.tour);
      if (tour) node.textContent = duration(elapsed(tour));
    }
    for (const node of main.querySelectorAll("[data-seen]")) node.textContent = node.dataset.prefix + ago(node.dataset.seen);
  }

  connect();
  fetchState();
  const ticker = setInterval(tick, 1000);
  const safety = setInterval(refresh, SAFETY_REFRESH_MS);
  return () => {
    stopped = true;
    source.close();
    clearInterval(ticker);
    clearInterval(safety);
    clearTimeout(timer);
  };
}
