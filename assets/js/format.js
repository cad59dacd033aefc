// How numbers, durations and times read on every page (times in the browser's locale).

const dash = "—";

/** 45s, 4m 05s, 1h 02m. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return dash;
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export function number(value) {
  return value === null || value === undefined ? dash : Number(value).toLocaleString();
}

/** "1 visit", "12 visits". */
export function count(value, noun) {
  return `${number(value)} ${noun}${value === 1 ? "" : "s"}`;
}

export function dateTime(iso) {
  if (!iso) return dash;
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A short date and time for tables: "Dec 4, 9:44 AM" (the year only when not this one). */
export function shortDateTime(iso) {
  if (!iso) return dash;
  const at = new Date(iso);
  const options = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  if (at.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return at.toLocaleString(undefined, options);
}

/** The time of day, to the minute. */
export function clock(iso) {
  if (!iso) return dash;
  return new Date(iso).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
}

/** The time of day, to the second. */
export function time(iso) {
  if (!iso) return dash;
  return new Date(iso).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });
}

/** A site day ("2026-12-04") as a local date: "Dec 4" unless `options` say otherwise. */
export function day(date, options = { month: "short", day: "numeric" }) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, options);
}

/** "just now", "5 min ago", "2 h ago", else the date and time. */
export function ago(iso, now = Date.now()) {
  if (!iso) return dash;
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 6 * 3600) return `${Math.floor(seconds / 3600)} h ago`;
  return dateTime(iso);
}

/** A headset by its name, else its device key. */
export function headset(name, deviceKey) {
  return name || deviceKey || dash;
}

const statuses = { active: "In progress", completed: "Completed", timed_out: "Timed out", abandoned: "Abandoned" };

export function status(value) {
  return statuses[value] || value || dash;
}
