// Overview: one period's KPIs against the previous period, tours per day, what buyers looked
// at longest, and the funnel. The period is kept in the URL (?period=30d) so a reload keeps it.

import { api, query } from "./api.js";
import { barList, funnel, toursPerDay } from "./charts.js";
import { empty, errorBox, h, loaded } from "./dom.js";
import { count, day, duration, number } from "./format.js";

const PERIODS = [
  ["today", "Today"],
  ["7d", "7 days"],
  ["30d", "30 days"],
  ["90d", "90 days"],
  ["custom", "Custom"],
];

const KPIS = [
  ["tours", "Tours", number],
  ["avg_tour_seconds", "Average tour", duration],
  ["engaged_tours", "Engaged tours", number, "3 min or longer"],
  ["high_intent_tours", "High intent", number, "10 min or longer"],
  ["unique_headsets", "Headsets used", number],
];

const NO_TOURS = "Tours appear here as headsets upload.";

export function mount(main) {
  const params = new URLSearchParams(location.search);
  let period = PERIODS.some(([key]) => key === params.get("period")) ? params.get("period") : "7d";
  if (period === "custom" && !(params.get("date_from") && params.get("date_to"))) period = "7d";
  let chart = null;
  let loading = 0;

  const buttons = PERIODS.map(([key, label]) => h("button", { type: "button", "data-period": key, onclick: () => choose(key) }, label));
  const from = h("input", { type: "date", id: "date-from", "aria-label": "From", value: params.get("date_from") || "", onchange: customChanged });
  const to = h("input", { type: "date", id: "date-to", "aria-label": "To", value: params.get("date_to") || "", onchange: customChanged });
  const custom = h("span", { class: "custom-dates" }, from, "–", to);
  const subtitle = h("p", {}, " ");
  const error = errorBox();
  const kpis = h("div", { class: "grid kpis" }, KPIS.map(kpiCard));
  const perDay = h("div", { class: "chart-box", id: "chart-tours-per-day" });
  const funnelBox = h("div", { id: "chart-funnel" });
  const top = h("div", { class: "grid tops", id: "chart-top" });
  main.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Overview"), subtitle), h("div", { class: "periods" }, h("div", { class: "segmented", role: "group", "aria-label": "Period" }, buttons), custom)),
    error.node,
    kpis,
    h(
      "div",
      { class: "grid overview-main" },
      h("section", { class: "card chart-card" }, h("div", { class: "card-head" }, h("h2", {}, "Tours per day"), h("div", { class: "legend" }, h("span", {}, "This period"), h("span", { class: "previous" }, "Previous period"))), perDay),
      h("section", { class: "card funnel-card" }, h("h2", {}, "Funnel"), funnelBox, h("p", { class: "note" }, "Engaged: 3 minutes or longer. High intent: 10 minutes or longer.")),
    ),
    top,
  );

  function kpiCard([key, label, , hint]) {
    return h(
      "div",
      { class: "card kpi", "data-kpi": key },
      h("span", { class: "label", title: hint || null }, label),
      h("span", { "data-field": "value" }, "—"),
      h("span", { class: "change", "data-field": "change" }, " "),
    );
  }

  function choose(key) {
    period = key;
    if (key === "custom" && !(from.value && to.value)) {
      showPicker();
      return;
    }
    load();
  }

  function customChanged() {
    if (from.value && to.value && from.value <= to.value) {
      period = "custom";
      load();
    }
  }

  function showPicker() {
    for (const button of buttons) button.setAttribute("aria-pressed", String(button.dataset.period === period));
    custom.hidden = period !== "custom";
  }

  function apiQuery() {
    return period === "custom" ? { date_from: from.value, date_to: to.value } : { period };
  }

  async function load() {
    showPicker();
    const search = query(period === "custom" ? { period, ...apiQuery() } : { period });
    if (search !== location.search) history.replaceState(null, "", `/overview${search}`);
    const token = ++loading;
    loaded(main, false);
    try {
      const data = (await api(`/api/v1/overview${query(apiQuery())}`)).data;
      if (token !== loading) return;
      error.show(null);
      render(data);
    } catch (e) {
      if (token === loading) error.show(e);
    }
    if (token === loading) loaded(main);
  }

  function render(data) {
    const p = data.period;
    subtitle.textContent = `${day(p.from, { dateStyle: "medium" })} – ${day(p.to, { dateStyle: "medium" })}, compared with ${day(p.previous_from)} – ${day(p.previous_to)}`;
    if (!from.value || period !== "custom") [from.value, to.value] = [p.from, p.to];
    for (const [key, , format] of KPIS) renderKpi(key, data.kpis[key], format);

    if (chart) chart.destroy();
    chart = toursPerDay(perDay, data.tours_per_day);
    if (data.kpis.tours.current === 0) perDay.append(h("div", { class: "overlay" }, empty("No tours in this period yet.", NO_TOURS)));

    funnelBox.replaceChildren(data.funnel[0]?.value ? funnel(data.funnel) : h("p", { class: "none" }, "No tours in this period yet."));
    top.replaceChildren(
      topCard("Views", data.top_views, () => null),
      topCard("Points of interest", data.top_pois, (item) => item.zone),
      topCard("Units", data.top_units, (item) => item.zone),
    );
  }

  function renderKpi(key, kpi, format) {
    const card = kpis.querySelector(`[data-kpi="${key}"]`);
    card.querySelector("[data-field=value]").textContent = format(kpi.current);
    const change = card.querySelector("[data-field=change]");
    const pct = kpi.change_pct;
    if (pct === null || pct === undefined) {
      change.className = "change";
      change.textContent = kpi.previous ? "no change" : "no previous data";
    } else {
      const rounded = Math.round(pct);
      change.className = `change ${rounded > 0 ? "up" : rounded < 0 ? "down" : ""}`;
      change.replaceChildren(`${rounded > 0 ? "▲" : rounded < 0 ? "▼" : ""} ${Math.abs(rounded)}%`, h("span", { class: "vs" }, " vs previous"));
    }
  }

  /** A ranked list by dwell; by visits when nothing in it has dwell (unit selections may not). */
  function topCard(title, items, sub) {
    const byDwell = items.some((item) => item.dwell_seconds > 0);
    const options = byDwell
      ? { value: (item) => item.dwell_seconds, text: (item) => duration(item.dwell_seconds), detail: (item) => count(item.visits, "visit") }
      : { value: (item) => item.visits, text: (item) => count(item.visits, "visit") };
    const body = items.length ? barList(items, { name: (item) => item.name || "(unnamed)", sub, ...options }) : h("p", { class: "none" }, "Nothing in this period yet.");
    return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, title), h("span", { class: "hint" }, byDwell ? "by dwell" : "by visits")), body);
  }

  load();
  return () => {
    loading++;
    if (chart) chart.destroy();
  };
}
