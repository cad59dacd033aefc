//! What a failed send means, decided by the error's `code` (SQLSTATE or PGRSTnnn) first and the
//! HTTP status second: PostgREST answers 500 both for a statement timeout (retry) and for a
//! repeated id in one batch (our bug, 21000), and Supabase's gateway answers without a code.

use std::time::Duration;

/// A send that did not succeed, from either target.
#[derive(Clone, Debug, Default)]
pub struct Failure {
    /// The HTTP status (PostgREST target); None for the direct target and transport failures.
    pub status: Option<u16>,
    /// SQLSTATE or PGRSTnnn.
    pub code: Option<String>,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
    /// The server's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// No answer: the request timed out, the connection failed or broke.
    pub transport: Option<Transport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Timeout,
    Connection,
}

/// What to do about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Transient (unreachable, overloaded, rate-limited): retry the same rows after a backoff.
    Retry,
    /// Too slow (statement or request timeout): halve the batch, then retry after a backoff.
    Slow,
    /// Too big (413): halve the batch and retry at once; a single row too big is quarantined.
    TooLarge,
    /// Something in these rows is refused (bad value, constraint): bisect to the row, quarantine it.
    Poison,
    /// 23503: the events' tour is not in the cloud: send the tour again, then the events.
    MissingParent,
    /// 21000: a row id twice in one merge batch — our bug; never retried blindly.
    Duplicate,
    /// Configuration or credentials (wrong key, URL, missing table): stop, alert, retry slowly.
    Stop,
}

/// Codes that say the configuration is wrong, whatever the rows hold.
const STOP_CODES: &[&str] = &[
    "PGRST301", "PGRST302", "PGRST303", // JWT invalid, no credentials, claims
    "42501",                            // permission denied / RLS
    "PGRST205", "PGRST125", "42P01",    // no such table / path
    "PGRST204", "42703",                // the cloud schema lacks a column: apply packaging/cloud/schema.sql
    "PGRST102", "PGRST100", "PGRST122", // our request's shape; every row would fail alike
    "PGRST106", "PGRST107",             // schema not exposed, Accept
    "42883", "3D000", "22023",          // function, database, role missing
];

pub fn classify(f: &Failure) -> Class {
    if let Some(transport) = f.transport {
        return match transport {
            Transport::Timeout => Class::Slow,
            Transport::Connection => Class::Retry,
        };
    }
    if let Some(code) = f.code.as_deref().filter(|c| !c.is_empty()) {
        if let Some(class) = by_code(code) {
            return class;
        }
    }
    by_status(f.status)
}

fn by_code(code: &str) -> Option<Class> {
    if STOP_CODES.contains(&code) {
        return Some(Class::Stop);
    }
    let class = |prefix: &str| code.starts_with(prefix);
    Some(match code {
        "21000" => Class::Duplicate,
        "23503" => Class::MissingParent,
        "57014" => Class::Slow,
        "25006" => Class::Retry, // read-only (e.g. Supabase's disk-full mode)
        "PGRST000" | "PGRST001" | "PGRST002" | "PGRST003" => Class::Retry,
        _ if class("28") || class("0P") || class("0L") => Class::Stop, // authentication, roles
        _ if class("08") || class("53") || class("57") || class("40") || class("55") || class("58") || class("XX") => {
            Class::Retry
        }
        _ if class("22") || class("23") || code == "P0001" => Class::Poison,
        _ => return None,
    })
}

fn by_status(status: Option<u16>) -> Class {
    match status {
        Some(401 | 403 | 404 | 406) => Class::Stop,
        Some(413) => Class::TooLarge,
        Some(408 | 504) => Class::Slow,
        Some(400 | 422) => Class::Poison,
        Some(405 | 409 | 425 | 429) => Class::Retry,
        Some(s) if s >= 500 => Class::Retry,
        // Another 4xx: nothing says it is these rows; retry later rather than quarantine.
        _ => Class::Retry,
    }
}

/// The failure in plain words, with what to do where there is something to do.
pub fn describe(f: &Failure, class: Class) -> String {
    let mut what = match (f.status, f.code.as_deref()) {
        (Some(status), Some(code)) => format!("{status} {code}: {}", f.message),
        (Some(status), None) => format!("{status}: {}", f.message),
        (None, Some(code)) => format!("{code}: {}", f.message),
        (None, None) => f.message.clone(),
    };
    if let Some(details) = f.details.as_deref().filter(|d| !d.is_empty()) {
        what.push_str(&format!(" ({details})"));
    }
    let advice = match class {
        Class::Retry => "the cloud is unreachable or busy; retrying with backoff, nothing is lost",
        Class::Slow => "the cloud answered too slowly; sending smaller batches, retrying with backoff",
        Class::TooLarge => "the request was too large; sending smaller batches",
        Class::Poison => "the cloud refused a row for what it holds; it is quarantined, the rest goes on",
        Class::MissingParent => "the cloud lacks the tour of these events; sending the tour again first",
        Class::Duplicate => "the cloud saw a row twice in one batch; retrying later after checking the batch",
        Class::Stop => match f.status {
            Some(401 | 403) | None if is_auth(f) => {
                "sync stopped: the cloud refused the credentials. Fix: set [sync] key to the project's service_role or secret key"
            }
            _ => "sync stopped: the cloud is not set up as expected. Fix: check [sync] url and apply `nexero sync schema` to the cloud database",
        },
    };
    format!("{advice} — {what}")
}

fn is_auth(f: &Failure) -> bool {
    matches!(f.status, Some(401 | 403))
        || f.code.as_deref().is_some_and(|c| c.starts_with("28") || c.starts_with("PGRST30") || c == "42501")
}

/// Whether a key is a JWT (three base64url parts): only then is it sent as `Authorization:
/// Bearer`; Supabase's `sb_secret_…` keys go in `apikey` alone.
pub fn is_jwt(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            let p = p.trim_end_matches('=');
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
