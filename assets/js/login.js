// The sign-in page: signs in, then goes back where the visitor was sent from (same site only).

import { api } from "./api.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

/** Where to go after signing in: `next` when it is a path on this site, else the live view. */
function destination() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/live";
}

function showError(message) {
  error.textContent = message;
  error.hidden = !message;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError("Enter your username and password.");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  showError("");
  try {
    await api("/api/v1/auth/login", { method: "POST", body: { username, password }, signIn: false });
    location.assign(destination());
  } catch (e) {
    showError(e.status === 401 ? "That username and password do not match an account." : e.message);
    form.password.select();
    button.disabled = false;
  }
});
