// Building DOM nodes without HTML strings: h("a", {href, class: "x", onclick}, "text", child).

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

/** Appends children (nodes, strings, numbers, arrays of them); null and false are skipped. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** An SVG element (charts draw with these). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) if (child) node.append(child);
  return node;
}

/** A box that shows an error message in the page, or nothing. */
export function errorBox() {
  const box = h("p", { class: "error-box", role: "alert", hidden: true });
  return {
    node: box,
    show(error) {
      if (error && error.status === 401) return; // already on the way to sign in
      box.textContent = error ? error.message || String(error) : "";
      box.hidden = !error;
    },
  };
}

/** An empty state that says why there is nothing and what makes something appear. */
export function empty(title, hint) {
  return h("div", { class: "empty" }, h("strong", {}, title), hint);
}

/** Marks a page's root as rendered (tests and screenshots wait for it), or as loading again. */
export function loaded(main, done = true) {
  main.dataset.loaded = done ? "true" : "false";
}
