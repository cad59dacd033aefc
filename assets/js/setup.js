// First-run setup: the link the appliance prints carries a one-time token; it creates the first
// admin account, signs in, and opens the dashboard.

import { api, query } from "./api.js";

const form = document.getElementById("setup-form");
const invalid = "This setup link is not valid: it is wrong, or the appliance is already set up. Sign in instead, or ask its admin.";
const error = document.getElementById("setup-error");
const token = new URLSearchParams(location.search).get("token") || "";

function showError(message) {
  error.textContent = message;
  error.hidden = !message;
}

function disable(message) {
  showError(message);
  for (const control of form.elements) control.disabled = true;
}

async function checkToken() {
  if (!token) {
    disable("Open the setup link the appliance printed when it started for the first time (it ends in ?token=…).");
    return;
  }
  try {
    const answer = await api(`/api/v1/auth/setup${query({ token })}`, { signIn: false });
    if (!answer.data.valid) disable(invalid);
  } catch (e) {
    showError(e.message);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form["setup-username"].value.trim();
  const password = form["setup-password"].value;
  if (!username) return showError("Choose a username.");
  if (!password) return showError("Choose a password.");
  if (password !== form["setup-password2"].value) return showError("The two passwords are not the same.");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  showError("");
  try {
    await api("/api/v1/auth/setup", { method: "POST", body: { token, username, password }, signIn: false });
    location.assign("/live");
  } catch (e) {
    showError(e.status === 403 ? invalid : e.message);
    button.disabled = false;
  }
});

checkToken();
