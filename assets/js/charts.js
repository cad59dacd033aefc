// The dashboard's charts: tours per day with Chart.js (vendored, window.Chart), ranked bar lists
// and the funnel as small SVGs.

import { h, svg } from "./dom.js";
import { day, number } from "./format.js";

function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * Tours per day, this period's bars beside the previous period's (lighter). `rows` are the
 * overview's tours_per_day. Returns the chart (destroy() it before drawing another).
 */
export function toursPerDay(container, rows) {
  const canvas = h("canvas", { role: "img", "aria-label": "Tours per day in this period, beside the previous period" });
  container.replaceChildren(canvas);
  const Chart = window.Chart;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = colour("--muted");
  const short = rows.length <= 7;
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map((row) => day(row.date, short ? { weekday: "short", day: "numeric" } : undefined)),
      datasets: [
        { label: "Previous period", data: rows.map((row) => row.previous_tours), backgroundColor: colour("--accent-faint") },
        { label: "This period", data: rows.map((row) => row.tours), backgroundColor: colour("--accent") },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 300 },
      interaction: { mode: "index", intersect: false },
      datasets: { bar: { borderRadius: 4, categoryPercentage: 0.8, barPercentage: 0.9, maxBarThickness: 28 } },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => day(rows[items[0].dataIndex].date, { weekday: "short", month: "short", day: "numeric" }),
            label: (item) => {
              const row = rows[item.dataIndex];
              const tours = `${number(item.raw)} tour${item.raw === 1 ? "" : "s"}`;
              return item.datasetIndex === 0 ? ` Previous (${day(row.previous_date)}): ${tours}` : ` This period: ${tours}`;
            },
          },
        },
      },
      scales: {
        x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
        y: { beginAtZero: true, ticks: { precision: 0, maxTicksLimit: 6 }, grid: { color: colour("--line-soft") }, border: { display: false } },
      },
    },
  });
}

/**
 * A ranked list with a bar per item, longest first as given. `value(item)` sizes the bar,
 * `text(item)` is what it reads, `name(item)` and `sub(item)` (optional) label it.
 */
export function barList(items, { name, sub = () => null, value, text, detail = () => null }) {
  const max = Math.max(0, ...items.map(value));
  return h(
    "ol",
    { class: "barlist" },
    items.map((item) =>
      h(
        "li",
        {},
        h("span", { class: "name", title: name(item) }, name(item), sub(item) ? h("small", {}, sub(item)) : null),
        h("span", { class: "value" }, text(item), detail(item) ? h("small", {}, detail(item)) : null),
        svg(
          "svg",
          { viewBox: "0 0 100 8", preserveAspectRatio: "none", "aria-hidden": "true" },
          svg("rect", { x: 0, y: 0, height: 8, width: max > 0 ? Math.max(1, (value(item) / max) * 100) : 0 }),
        ),
      ),
    ),
  );
}

/** The funnel: tours → engaged → high intent, each bar as wide as its share of the first. */
export function funnel(steps) {
  const first = steps[0]?.value || 0;
  return h(
    "ol",
    { class: "funnel" },
    steps.map((step, i) => {
      const share = first > 0 ? (step.value / first) * 100 : 0;
      const width = step.value > 0 ? Math.max(1, share) : 0;
      return h(
        "li",
        {},
        h("span", { class: "name" }, step.name),
        h("span", { class: "value" }, number(step.value), i > 0 ? h("small", {}, `${Math.round(share)}%`) : null),
        svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true" }, svg("rect", { class: `step-${i}`, x: (100 - width) / 2, y: 0, width, height: 10 })),
      );
    }),
  );
}
