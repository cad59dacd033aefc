// Headsets (admins): every headset with an editable name, when it was last seen, its tours today
// and its state. Others see why the page is not for them (the API refuses them anyway).

import { api } from "./api.js";
import { empty, errorBox, h, loaded } from "./dom.js";
import { ago, dateTime, number } from "./format.js";

export function mount(main, { me }) {
  main.append(h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Headsets"), h("p", {}, "Name each headset so the team knows which one is which."))));
  if (me.role !== "admin") {
    main.append(empty("Headsets are for admins only.", "Ask an admin of this appliance to rename a headset."));
    loaded(main);
    return null;
  }
  const error = errorBox();
  const body = h("tbody");
  const emptyBox = h("div");
  const head = ["Name", "Device key", "Last seen", "Tours today", "State"].map((label) => h("th", { class: label === "Tours today" ? "right" : null }, label));
  main.append(error.node, h("div", { class: "card table-card" }, h("div", { class: "table-scroll" }, h("table", { id: "headsets-table" }, h("thead", {}, h("tr", {}, head)), body)), emptyBox));
  let stopped = false;

  async function load() {
    try {
      const answer = await api("/api/v1/headsets?limit=200");
      if (stopped) return;
      body.replaceChildren(...answer.data.map(row));
      emptyBox.replaceChildren(answer.data.length ? "" : empty("No headsets yet.", "A headset appears here the first time it connects to this appliance."));
      error.show(null);
    } catch (e) {
      if (!stopped) error.show(e);
    }
    if (!stopped) loaded(main);
  }

  function row(item) {
    const input = h("input", { class: "headset-name", value: item.name || "", placeholder: "Unnamed", maxlength: "80", "aria-label": `Name of ${item.device_key}` });
    const note = h("span", { class: "save-state", role: "status" });
    const save = h("button", { class: "btn small save-name", type: "button" }, "Save");
    async function submit() {
      save.disabled = true;
      note.className = "save-state";
      note.textContent = "Saving…";
      try {
        const name = input.value.trim() || null;
        const answer = await api(`/api/v1/headsets/${encodeURIComponent(item.device_key)}`, { method: "PATCH", body: { name } });
        input.value = answer.data.name || "";
        note.className = "save-state ok";
        note.textContent = "Saved";
      } catch (e) {
        note.className = "save-state error";
        note.textContent = e.message;
      }
      save.disabled = false;
    }
    save.addEventListener("click", submit);
    input.addEventListener("keydown", (e) => e.key === "Enter" && submit());
    input.addEventListener("input", () => (note.textContent = ""));
    return h(
      "tr",
      { "data-headset": item.device_key },
      h("td", {}, h("div", { class: "name-edit" }, input, save, note)),
      h("td", { class: "mono" }, item.device_key),
      h("td", { title: dateTime(item.last_seen_at), "data-seen": item.last_seen_at }, ago(item.last_seen_at)),
      h("td", { class: "right num" }, number(item.tours_today)),
      h("td", {}, h("span", { class: `pill ${item.state}` }, item.state)),
    );
  }

  load();
  return () => {
    stopped = true;
  };
}
