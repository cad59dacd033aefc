// Every call to the appliance's API: JSON in and out, errors as ApiError with the server's
// message, and a signed-out answer (401) sends the browser to sign in and back.

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The sign-in page, coming back here afterwards. */
function signInUrl() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/**
 * Calls the API and returns its whole answer ({success, data, …}). `body` is sent as JSON.
 * With `signIn: false` a 401 is an error like any other (the sign-in form wants that).
 */
export async function api(path, { method = "GET", body, signIn = true } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "The appliance could not be reached. Check the network connection and try again.");
  }
  if (response.status === 401 && signIn) {
    location.assign(signInUrl());
    throw new ApiError(401, "Signed out");
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, messageOf(payload) || `The appliance answered ${response.status} ${response.statusText}.`);
  return payload;
}

function messageOf(payload) {
  if (!payload) return null;
  if (typeof payload.message === "string") return capitalise(payload.message);
  if (typeof payload.detail === "string") return capitalise(payload.detail);
  return null;
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A query string of the entries that have a value ("" when none). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
