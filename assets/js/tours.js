// Tours: every tour, filtered, sorted and paged (25 a page), with a CSV export of exactly the
// filters shown. Filters, sort and page are kept in the URL so a reload or a link keeps them.

import { api, query } from "./api.js";
import { empty, errorBox, h, loaded } from "./dom.js";
import { duration, headset, number, shortDateTime, status } from "./format.js";

const PAGE_SIZE = 25;
const SEARCH_DELAY_MS = 300;
const PERIODS = [["", "All time"], ["today", "Today"], ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["90d", "Last 90 days"]];
const STATUSES = [["", "Any status"], ["active", "In progress"], ["completed", "Completed"], ["timed_out", "Timed out"], ["abandoned", "Abandoned"]];
const COLUMNS = [
  ["started_at", "Started"],
  ["headset", "Headset"],
  ["duration", "Duration", "right"],
  ["events", "Events", "right"],
  [null, "Status"],
  [null, "Tour"],
];

export function mount(main, { navigate }) {
  const params = new URLSearchParams(location.search);
  const state = {
    period: params.get("period") || "",
    status: params.get("status") || "",
    headset: params.get("headset") || "",
    q: params.get("q") || "",
    sort: params.get("sort") || "started_at",
    order: params.get("order") === "asc" ? "asc" : "desc",
    page: Math.max(1, Number.parseInt(params.get("page"), 10) || 1),
  };
  let loading = 0;
  let searchTimer = null;

  const select = (id, options, key, label) =>
    h("select", { id, "aria-label": label, onchange: (e) => change(key, e.target.value) }, options.map(([value, text]) => h("option", { value, selected: state[key] === value }, text)));
  const headsetInput = h("input", { id: "filter-headset", type: "search", list: "headset-options", placeholder: "Headset", "aria-label": "Headset", value: state.headset });
  const search = h("input", { id: "filter-q", type: "search", placeholder: "Search tour, customer or property id", "aria-label": "Search", value: state.q });
  const headsetOptions = h("datalist", { id: "headset-options" });
  const exportLink = h("a", { id: "export-csv", class: "btn", href: "/api/v1/sessions.csv", download: "" }, "Download CSV");
  const total = h("span", { id: "tours-total" }, "0");
  const error = errorBox();
  const body = h("tbody");
  const headers = COLUMNS.map(([key, label, align]) => h("th", { "data-sort": key, class: align, scope: "col", onclick: key ? () => sortBy(key) : null }, label));
  const table = h("table", { id: "tours-table" }, h("thead", {}, h("tr", {}, headers)), body);
  const emptyBox = h("div");
  const pageInfo = h("span");
  const prev = h("button", { id: "page-prev", class: "btn small", type: "button", onclick: () => turn(-1) }, "← Previous");
  const next = h("button", { id: "page-next", class: "btn small", type: "button", onclick: () => turn(1) }, "Next →");

  for (const input of [headsetInput, search]) {
    const key = input === search ? "q" : "headset";
    input.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => change(key, input.value.trim()), SEARCH_DELAY_MS);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        clearTimeout(searchTimer);
        change(key, input.value.trim());
      }
    });
  }

  main.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Tours"), h("p", { class: "total" }, total, " tours")), exportLink),
    h(
      "div",
      { class: "toolbar" },
      select("filter-period", PERIODS, "period", "Period"),
      select("filter-status", STATUSES, "status", "Status"),
      headsetInput,
      headsetOptions,
      h("div", { class: "grow" }, search),
    ),
    error.node,
    h("div", { class: "card table-card" }, h("div", { class: "table-scroll" }, table), emptyBox, h("div", { class: "table-foot" }, pageInfo, h("div", { class: "pager" }, prev, next))),
  );

  function filters() {
    return { period: state.period, status: state.status, headset: state.headset, q: state.q };
  }

  function change(key, value) {
    if (state[key] === value) return;
    state[key] = value;
    state.page = 1;
    load();
  }

  function sortBy(key) {
    state.order = state.sort === key && state.order === "desc" ? "asc" : "desc";
    state.sort = key;
    state.page = 1;
    load();
  }

  function turn(step) {
    state.page += step;
    load();
  }

  async function load() {
    const token = ++loading;
    loaded(main, false);
    const shown = { ...filters(), sort: state.sort === "started_at" ? "" : state.sort, order: state.order === "desc" ? "" : state.order, page: state.page > 1 ? state.page : "" };
    history.replaceState(null, "", `/tours${query(shown)}`);
    exportLink.href = `/api/v1/sessions.csv${query(filters())}`;
    for (const th of headers) {
      if (th.dataset.sort === state.sort) th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const offset = (state.page - 1) * PAGE_SIZE;
    try {
      const answer = await api(`/api/v1/sessions${query({ ...filters(), sort: state.sort, order: state.order, limit: PAGE_SIZE, offset })}`);
      if (token !== loading) return;
      error.show(null);
      render(answer);
    } catch (e) {
      if (token === loading) error.show(e);
    }
    if (token === loading) loaded(main);
  }

  function render(answer) {
    total.textContent = String(answer.total);
    body.replaceChildren(...answer.data.map(row));
    const filtered = Object.values(filters()).some(Boolean);
    emptyBox.replaceChildren(
      answer.data.length
        ? ""
        : filtered
          ? empty("No tours match these filters.", "Try a longer period or clear the search.")
          : empty("No tours yet.", "Tours appear here as headsets upload."),
    );
    const pages = Math.max(1, answer.total_pages || 1);
    pageInfo.textContent = answer.total ? `Page ${state.page} of ${pages}` : "";
    prev.disabled = state.page <= 1;
    next.disabled = state.page >= pages;
    if (state.page > pages) {
      state.page = pages;
      load();
    }
  }

  function row(tour) {
    const href = `/tours/${encodeURIComponent(tour.id)}`;
    return h(
      "tr",
      { "data-tour-id": tour.id, class: "link-row", onclick: (e) => !e.target.closest("a") && navigate(href) },
      h("td", { class: "nowrap" }, h("a", { href }, shortDateTime(tour.started_at))),
      h("td", {}, headset(tour.headset_name, tour.device_key), tour.headset_name ? h("span", { class: "cell-sub mono" }, tour.device_key) : null),
      h("td", { class: "right num" }, duration(tour.duration_seconds)),
      h("td", { class: "right num" }, number(tour.event_count)),
      h("td", {}, h("span", { class: `pill ${tour.status}` }, status(tour.status))),
      h("td", {}, h("span", { class: "mono" }, tour.external_id || tour.id.slice(0, 8)), tour.customer_id ? h("span", { class: "cell-sub" }, `Customer ${tour.customer_id}`) : null),
    );
  }

  /** Headset names for the headset filter's suggestions (the filter works without them). */
  async function suggestHeadsets() {
    try {
      const answer = await api("/api/v1/headsets?limit=200");
      headsetOptions.replaceChildren(...answer.data.map((item) => h("option", { value: item.device_key }, item.name || item.device_key)));
    } catch {
      // Suggestions only; the list of tours says what went wrong if anything does.
    }
  }

  load();
  suggestHeadsets();
  return () => {
    loading++;
    clearTimeout(searchTimer);
  };
}
