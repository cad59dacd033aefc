// The app shell: who is signed in, the nav, and routing between pages in the browser (History
// API). Each page module exports mount(main, ctx) and may return a function that stops it.

import { api } from "./api.js";
import { h } from "./dom.js";

const pages = {
  live: { title: "Live", load: () => import("./live.js") },
  overview: { title: "Overview", load: () => import("./overview.js") },
  tours: { title: "Tours", load: () => import("./tours.js") },
  tour: { title: "Tour", load: () => import("./tour.js") },
  headsets: { title: "Headsets", load: () => import("./headsets.js") },
};

const routes = [
  [/^\/live$/, "live"],
  [/^\/overview$/, "overview"],
  [/^\/tours$/, "tours"],
  [/^\/tours\/([^/]+)$/, "tour"],
  [/^\/headsets$/, "headsets"],
];

const view = document.getElementById("view");
let me = null;
let stop = null;
let rendering = 0;

function route(path) {
  for (const [pattern, name] of routes) {
    const match = pattern.exec(path);
    if (match) return { name, params: match.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Goes to a page of the app without reloading. */
function navigate(url) {
  history.pushState(null, "", url);
  render();
}

async function render() {
  if (location.pathname === "/") history.replaceState(null, "", "/live");
  const token = ++rendering;
  if (stop) stop();
  stop = null;
  const found = route(location.pathname);
  for (const link of document.querySelectorAll("#nav a")) {
    const current = found && link.getAttribute("href") === `/${found.name === "tour" ? "tours" : found.name}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!found) {
    view.replaceChildren(h("main", { class: "page" }, h("h1", {}, "Page not found"), h("p", { class: "muted" }, "Pick a page on the left.")));
    return;
  }
  const page = pages[found.name];
  document.title = `${page.title} · Nexero Showroom`;
  const main = h("main", { id: `page-${found.name}`, class: "page", "data-loaded": "false" });
  view.replaceChildren(main);
  window.scrollTo(0, 0);
  const module = await page.load();
  if (token !== rendering) return; // another page was opened meanwhile
  stop = module.mount(main, { me, params: found.params, navigate }) || null;
}

/** Same-site links to pages of the app open without a reload. */
function onClick(event) {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (link.target || link.hasAttribute("download") || link.origin !== location.origin || !route(link.pathname)) return;
  event.preventDefault();
  if (link.pathname + link.search !== location.pathname + location.search) navigate(link.pathname + link.search);
}

async function signOut() {
  try {
    await api("/api/v1/auth/logout", { method: "POST", signIn: false });
  } finally {
    location.assign("/login");
  }
}

async function start() {
  me = (await api("/api/v1/auth/me")).data;
  document.getElementById("whoami").textContent = me.username;
  document.getElementById("role").textContent = me.role === "admin" ? "Admin" : "Sales";
  document.getElementById("avatar").textContent = me.username.charAt(0);
  if (me.role === "admin") document.getElementById("nav").append(document.getElementById("admin-nav").content.cloneNode(true));
  document.getElementById("sign-out").addEventListener("click", signOut);
  import("./sync.js").then((sync) => sync.mount(document.getElementById("sync-panel"), me));
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", render);
  render();
}

start().catch((error) => {
  if (error.status === 401) return;
  view.replaceChildren(h("main", { class: "page" }, h("p", { class: "error-box", role: "alert" }, error.message)));
});
