// One tour: its facts, the timeline of events with dwell (flagged dwell shown with its reason,
// never counted), dwell per zone and per view, the path through the zones, and the raw uploads.

import { api } from "./api.js";
import { barList } from "./charts.js";
import { empty, errorBox, h, loaded } from "./dom.js";
import { count, dateTime, duration, headset, number, status, time } from "./format.js";

export function mount(main, { params }) {
  const id = params[0];
  const error = errorBox();
  main.append(h("a", { class: "back", href: "/tours" }, "← All tours"), error.node);
  let stopped = false;

  api(`/api/v1/sessions/${encodeURIComponent(id)}`)
    .then((answer) => {
      if (stopped) return;
      render(answer.data);
      loaded(main);
    })
    .catch((e) => {
      if (stopped) return;
      if (e.status === 404) main.append(empty("This tour does not exist.", "It may have been removed, or the link is wrong."));
      else error.show(e);
      loaded(main);
    });

  function render(tour) {
    const title = tour.external_id || `Tour ${tour.id.slice(0, 8)}`;
    document.title = `${title} · Nexero Showroom`;
    main.append(
      h(
        "div",
        { class: "page-head" },
        h("div", {}, h("h1", {}, title, " ", h("span", { class: `pill ${tour.status}` }, status(tour.status))), h("p", {}, headset(tour.headset_name, tour.device_key), " · ", dateTime(tour.started_at))),
        h("a", { id: "export-events-csv", class: "btn", href: `/api/v1/sessions/${encodeURIComponent(tour.id)}/events.csv`, download: "" }, "Events CSV"),
      ),
      facts(tour),
      h("div", { class: "grid detail-charts section" }, dwellCard("Dwell per zone", "chart-zone-dwell", tour.zones, (z) => z.zone), dwellCard("Dwell per view", "chart-view-dwell", tour.views, (v) => v.name)),
      h("section", { class: "card section" }, h("h2", {}, "Path through the zones"), path(tour.path)),
      h("section", { class: "section" }, h("h2", {}, "Timeline", h("span", { class: "count" }, number(tour.timeline.length))), timeline(tour)),
      h("section", { class: "section" }, h("h2", {}, "Uploads", h("span", { class: "count" }, number(tour.uploads.length))), uploads(tour.uploads)),
    );
  }

  function facts(tour) {
    const fact = (label, value, big = false) => h("div", {}, h("dt", {}, label), h("dd", { class: big ? "big num" : null }, value ?? "—"));
    return h(
      "section",
      { class: "card" },
      h(
        "dl",
        { class: "facts" },
        fact("Duration", duration(tour.duration_seconds), true),
        fact("Events", number(tour.event_count), true),
        fact("Started", dateTime(tour.started_at)),
        fact("Ended", tour.ended_at ? dateTime(tour.ended_at) : "Still going"),
        fact("Headset", headset(tour.headset_name, tour.device_key)),
        fact("Headset's tour id", tour.external_id ? h("span", { class: "mono" }, tour.external_id) : "—"),
        fact("Customer", tour.customer_id),
        fact("Property", tour.property_id),
      ),
      tour.time_warnings ? h("p", { class: "warning" }, "Time warnings: ", tour.time_warnings) : null,
    );
  }

  function dwellCard(title, id, items, name) {
    const body = items.length
      ? barList(items, { name: (i) => name(i) || "(unnamed)", value: (i) => i.dwell_seconds || 0, text: (i) => duration(i.dwell_seconds), detail: (i) => count(i.visits, "visit") })
      : h("p", { class: "none" }, "No dwell recorded.");
    return h("section", { class: "card" }, h("h2", {}, title), h("div", { id }, body));
  }

  function path(steps) {
    if (!steps.length) return h("p", { class: "none" }, "No zones visited.");
    return h(
      "ol",
      { class: "path", id: "tour-path" },
      steps.map((step) => h("li", { title: `Entered ${time(step.entered_at)}` }, step.zone, h("small", {}, duration(step.dwell_seconds)))),
    );
  }

  function timeline(tour) {
    if (!tour.timeline.length) return empty("No events in this tour.", "Events appear as the headset uploads them.");
    const start = Date.parse(tour.started_at);
    const rows = tour.timeline.map((event) => {
      const at = Date.parse(event.occurred_at) - start;
      const dwell = event.flagged
        ? h("td", { class: "right dwell" }, event.dwell_text ? h("s", {}, event.dwell_text) : "—", h("span", { class: "flag", title: "Shown, not counted" }, `Not counted: ${event.flagged}`))
        : h("td", { class: "right dwell num" }, duration(event.dwell_seconds));
      return h(
        "tr",
        { "data-event-kind": event.kind, class: event.flagged ? "flagged" : null },
        h("td", { class: "num nowrap" }, time(event.occurred_at), h("span", { class: "cell-sub" }, `+${duration(at / 1000)}`)),
        h("td", { class: "nowrap" }, h("span", { class: `kind ${event.kind}` }, event.kind.replace("_", " "))),
        h("td", {}, event.name || event.event_type || "—"),
        h("td", {}, event.zone || "—"),
        dwell,
      );
    });
    const head = ["Time", "Kind", "Name", "Zone", "Dwell"].map((label) => h("th", { class: label === "Dwell" ? "right" : null }, label));
    return h("div", { class: "card table-card" }, h("div", { class: "table-scroll" }, h("table", { id: "tour-timeline" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows))));
  }

  function uploads(items) {
    if (!items.length) return h("div", { id: "tour-uploads" }, empty("No uploads kept for this tour.", ""));
    return h(
      "div",
      { class: "uploads", id: "tour-uploads" },
      items.map((upload) =>
        h(
          "details",
          { "data-upload": upload.id },
          h(
            "summary",
            {},
            h("span", { class: "num" }, dateTime(upload.received_at)),
            h("span", { class: "endpoint" }, upload.endpoint),
            h("span", { class: `pill ${upload.outcome}` }, upload.outcome || upload.status),
            h("span", { class: "muted" }, `${count(upload.events_stored, "event")} stored`),
            upload.detail ? h("span", { class: "muted" }, upload.detail) : null,
          ),
          h("pre", {}, pretty(upload.body)),
        ),
      ),
    );
  }

  return () => {
    stopped = true;
  };
}

/** A body pretty-printed when it is JSON, else as it came. */
function pretty(body) {
  if (!body) return "(empty)";
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}
