//! The convergence check both sync targets share: the cloud database (packaging/cloud/schema.sql)
//! holds exactly the appliance's finished tours and their events. Every tour of the SQLite file
//! whose status is completed, timed_out or abandoned is one `vr_sessions` row with the same
//! values; each of its events is one row, under its own UUID, in the table its kind maps to
//! (view → view_events, poi → poi_visits, anything else → tracking_events) with the same
//! content; no UUID is in two tables; the cloud has nothing else (no active tour, no row of a
//! tour the appliance does not have, no stray event).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// What converged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converged {
    pub tours: usize,
    pub events: usize,
}

type Rows = BTreeMap<String, Vec<Option<String>>>;

/// One side's content: tours by UUID and events by UUID, as comparable tuples.
#[derive(Debug, Default)]
struct Side {
    tours: Rows,
    events: Rows,
}

const FINISHED: &str = "('completed', 'timed_out', 'abandoned')";

fn ms(v: Option<i64>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// The appliance's side, read-only (the appliance may still be running).
fn appliance_side(sqlite: &Path) -> Side {
    let conn = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", sqlite.display()));
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut side = Side::default();
    let mut tours = conn
        .prepare(&format!(
            "SELECT uuid, status, started_at, ended_at, external_id, device_key, customer_id,
                    property_id, device_type, event_count, time_warnings
             FROM tour_sessions WHERE status IN {FINISHED}"
        ))
        .unwrap();
    let rows = tours
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                vec![
                    Some(r.get::<_, String>(1)?),
                    ms(r.get(2)?),
                    ms(r.get(3)?),
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    ms(r.get(9)?),
                    r.get(10)?,
                ],
            ))
        })
        .unwrap();
    for row in rows {
        let (uuid, fields) = row.unwrap();
        side.tours.insert(uuid.to_lowercase(), fields);
    }
    let mut events = conn
        .prepare(&format!(
            "SELECT e.uuid, t.uuid, e.kind, e.event_type, e.name, e.zone, e.source, e.occurred_at,
                    e.received_at, e.dwell_text, e.dwell_ms, e.object_name, e.gaze_target,
                    e.interaction_type
             FROM events e JOIN tour_sessions t ON t.id = e.session_id
             WHERE t.status IN {FINISHED}"
        ))
        .unwrap();
    let rows = events
        .query_map([], |r| {
            let blob: Vec<u8> = r.get(0)?;
            let uuid = uuid::Uuid::from_slice(&blob)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| format!("bad uuid blob {blob:?}"));
            let session: String = r.get(1)?;
            let kind: String = r.get(2)?;
            let s = |i: usize| r.get::<_, Option<String>>(i);
            let i = |i: usize| r.get::<_, Option<i64>>(i).map(ms);
            let fields = match kind.as_str() {
                // table, session, kind, event_type, name, dwell_ms, dwell_text, occurred, received
                "view" => vec![
                    Some("view_events".into()),
                    Some(session.to_lowercase()),
                    Some(kind.clone()),
                    s(3)?,
                    s(4)?,
                    i(10)?,
                    s(9)?,
                    i(7)?,
                    i(8)?,
                ],
                // table, session, kind, event_type, name, zone, source, dwell_ms, dwell_text,
                // occurred, received
                "poi" => vec![
                    Some("poi_visits".into()),
                    Some(session.to_lowercase()),
                    Some(kind.clone()),
                    s(3)?,
                    s(4)?,
                    s(5)?,
                    s(6)?,
                    i(10)?,
                    s(9)?,
                    i(7)?,
                    i(8)?,
                ],
                // table, session, kind, event_type, name, zone, object, gaze, interaction,
                // dwell_ms, occurred
                _ => vec![
                    Some("tracking_events".into()),
                    Some(session.to_lowercase()),
                    Some(kind.clone()),
                    s(3)?,
                    s(4)?,
                    s(5)?,
                    s(11)?,
                    s(12)?,
                    s(13)?,
                    i(10)?,
                    i(7)?,
                ],
            };
            Ok((uuid, fields))
        })
        .unwrap();
    for row in rows {
        let (uuid, fields) = row.unwrap();
        let previous = side.events.insert(uuid.clone(), fields);
        assert!(previous.is_none(), "the appliance holds event {uuid} twice");
    }
    side
}

fn t(column: &str) -> String {
    format!("(extract(epoch from {column}) * 1000)::bigint::text")
}

/// The cloud's side, plus every problem that is not a plain difference (duplicates, site ids).
async fn cloud_side(pg_url: &str) -> (Side, Vec<String>) {
    use super::postgres::query_text;
    let mut side = Side::default();
    let mut problems = Vec::new();
    let tours = query_text(
        pg_url,
        &format!(
            "SELECT id::text, site_id::text, status, {}, {}, external_id, device_key, customer_id,
                    property_id, device_type, event_count::text, time_warnings FROM vr_sessions",
            t("started_at"),
            t("ended_at")
        ),
    )
    .await;
    let mut site_of: BTreeMap<String, Option<String>> = BTreeMap::new();
    for mut row in tours {
        let id = row.remove(0).unwrap();
        site_of.insert(id.clone(), row.remove(0));
        side.tours.insert(id, row);
    }
    let queries = [
        (
            "view_events",
            format!(
                "SELECT id::text, site_id::text, 'view_events', session_id::text,
                        metadata->>'kind', metadata->>'event_type', view_name,
                        duration_ms::text, duration_string, {}, {} FROM view_events",
                t("event_time"),
                t("received_at")
            ),
        ),
        (
            "poi_visits",
            format!(
                "SELECT id::text, site_id::text, 'poi_visits', session_id::text,
                        metadata->>'kind', metadata->>'event_type', poi_name, parent_zone,
                        poi_source, duration_ms::text, duration_string, {}, {} FROM poi_visits",
                t("event_time"),
                t("received_at")
            ),
        ),
        (
            "tracking_events",
            format!(
                "SELECT id::text, site_id::text, 'tracking_events', session_id::text,
                        metadata->>'kind', event_type, metadata->>'name', zone_name, object_name,
                        gaze_target, interaction_type, dwell_time_ms::text, {}
                 FROM tracking_events",
                t("\"timestamp\"")
            ),
        ),
    ];
    for (table, sql) in queries {
        for mut row in query_text(pg_url, &sql).await {
            let id = row.remove(0).unwrap();
            let site = row.remove(0);
            let session = row[1].clone().unwrap_or_default();
            if let Some(session_site) = site_of.get(&session) {
                if *session_site != site {
                    problems.push(format!(
                        "{table} {id}: site_id {site:?} differs from its session's {session_site:?}"
                    ));
                }
            }
            if let Some(other) = side.events.insert(id.clone(), row) {
                problems.push(format!(
                    "event {id} is in {table} and also in {}",
                    other[0].clone().unwrap_or_default()
                ));
            }
        }
    }
    let sites: BTreeSet<_> = site_of.values().cloned().collect();
    if sites.len() > 1 {
        problems.push(format!("tours from more than one site_id: {sites:?}"));
    }
    (side, problems)
}

fn compare(what: &str, appliance: &Rows, cloud: &Rows, problems: &mut Vec<String>) {
    for (id, fields) in appliance {
        match cloud.get(id) {
            None => problems.push(format!("{what} {id} is missing in the cloud: {fields:?}")),
            Some(c) if c != fields => problems.push(format!(
                "{what} {id} differs:\n    appliance {fields:?}\n    cloud     {c:?}"
            )),
            Some(_) => {}
        }
    }
    for (id, fields) in cloud {
        if !appliance.contains_key(id) {
            problems.push(format!("{what} {id} is in the cloud only: {fields:?}"));
        }
    }
}

fn per_tour(events: &Rows) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for fields in events.values() {
        *counts.entry(fields[1].clone().unwrap_or_default()).or_insert(0) += 1;
    }
    counts
}

/// Compares once: Ok with the sizes when the cloud holds exactly the appliance's finished
/// tours and events, else every difference (the first 20, with per-tour counts).
pub async fn check_converged(sqlite: &Path, pg_url: &str) -> Result<Converged, String> {
    let appliance = appliance_side(sqlite);
    let (cloud, mut problems) = cloud_side(pg_url).await;
    compare("tour", &appliance.tours, &cloud.tours, &mut problems);
    compare("event", &appliance.events, &cloud.events, &mut problems);
    if problems.is_empty() {
        return Ok(Converged {
            tours: appliance.tours.len(),
            events: appliance.events.len(),
        });
    }
    let (a, c) = (per_tour(&appliance.events), per_tour(&cloud.events));
    let counts: Vec<String> = appliance
        .tours
        .keys()
        .chain(cloud.tours.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|id| a.get(*id) != c.get(*id))
        .take(20)
        .map(|id| format!("{id}: appliance {:?} cloud {:?}", a.get(id), c.get(id)))
        .collect();
    let total = problems.len();
    problems.truncate(20);
    Err(format!(
        "not converged: appliance {} tours / {} events, cloud {} tours / {} events; {total} problems:\n  {}\nper-tour event counts that differ:\n  {}",
        appliance.tours.len(),
        appliance.events.len(),
        cloud.tours.len(),
        cloud.events.len(),
        problems.join("\n  "),
        counts.join("\n  ")
    ))
}

/// Asserts the cloud holds exactly the appliance's finished tours and events now.
pub async fn assert_converged(sqlite: &Path, pg_url: &str) -> Converged {
    check_converged(sqlite, pg_url)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits (polling) until the cloud holds exactly the appliance's finished tours and events;
/// panics with the differences after `timeout`.
pub async fn wait_converged(sqlite: &Path, pg_url: &str, timeout: Duration) -> Converged {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check_converged(sqlite, pg_url).await {
            Ok(c) => return c,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("after {timeout:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Row counts of the four cloud tables (vr_sessions, tracking_events, view_events, poi_visits).
pub async fn cloud_counts(pg_url: &str) -> [i64; 4] {
    let mut out = [0; 4];
    for (i, table) in ["vr_sessions", "tracking_events", "view_events", "poi_visits"]
        .iter()
        .enumerate()
    {
        out[i] = super::postgres::count(pg_url, table).await;
    }
    out
}

/// Records one finished tour on the appliance at `base` (http://127.0.0.1:port) as a headset
/// would: `events` uploads cycling through a view, a POI, a unit selection and a generic event
/// (so every cloud table gets rows), then the summary that completes it. Returns the tour's
/// UUID.
pub async fn record_tour(client: &reqwest::Client, base: &str, device: &str, events: usize) -> String {
    let url = format!("{base}{}", super::UNIVERSAL);
    let mut tour = String::new();
    for i in 0..events {
        let body = match i % 4 {
            0 => serde_json::json!({"View": format!("View {}", i % 7), "TotalDuration": format!("0:{:02}", 3 + i % 50)}),
            1 => serde_json::json!({"POI": format!("POI {}", i % 5), "Parent": "Amenities", "POI_Duration": format!("0:{:02}", 1 + i % 40)}),
            2 => serde_json::json!({"Name": format!("Unit {}", i % 9), "Sqft": "1200", "Type": "2BR"}),
            _ => serde_json::json!({"event_type": "NavBar_Click", "Menu_Item": format!("Item {i}")}),
        };
        let answer = post_upload(client, &url, device, &body).await;
        if let Some(id) = answer["session_id"].as_str() {
            tour = id.to_string();
        }
    }
    let now = chrono::Utc::now().timestamp();
    let summary = serde_json::json!({"session_start": (now - 60).to_string(), "session_end": now.to_string()});
    let answer = post_upload(client, &url, device, &summary).await;
    answer["session_id"].as_str().map(str::to_string).unwrap_or(tour)
}

async fn post_upload(client: &reqwest::Client, url: &str, device: &str, body: &serde_json::Value) -> serde_json::Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-device-key", device)
        .body(body.to_string())
        .send()
        .await
        .expect("upload sent");
    let status = response.status().as_u16();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    assert!((200..300).contains(&status), "upload {body} answered {status}: {answer}");
    answer
}

/// Which way the appliance reaches the cloud in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// postrust behind the Supabase-shaped gateway of the fault proxy (`…/rest/v1`, `apikey`).
    Supabase,
    /// postrust's bare root through the fault proxy (plain PostgREST shape).
    Postgrest,
    /// `postgres://` straight to the database, through the TCP fault proxy.
    Postgres,
}

/// A cloud for one test: a throwaway PostgreSQL with the cloud schema, and for the HTTP targets
/// postrust in front of it; the appliance reaches it through a fault proxy (`http` or `tcp`).
pub struct Cloud {
    pub target: Target,
    /// The cloud database (superuser URL, straight to PostgreSQL: for checks).
    pub db: String,
    pub http: Option<super::fault_proxy::FaultProxy>,
    pub tcp: Option<super::fault_proxy::TcpProxy>,
    pub rest: Option<super::postrust::Postrust>,
    pub pg: super::postgres::PgServer,
}

impl Cloud {
    pub async fn start(target: Target) -> Cloud {
        use super::fault_proxy::{FaultProxy, TcpProxy};
        let pg = super::postgres::PgServer::start();
        let db = pg.fresh_database("cloud").await;
        super::postgres::apply_cloud_schema(&db).await;
        let (mut http, mut tcp, mut rest) = (None, None, None);
        match target {
            Target::Supabase | Target::Postgrest => {
                let server = super::postrust::Postrust::start(&db).await;
                server.reload_schema("vr_sessions").await;
                http = Some(if target == Target::Supabase {
                    FaultProxy::start_supabase(&server.url(), &server.key()).await
                } else {
                    FaultProxy::start(&server.url()).await
                });
                rest = Some(server);
            }
            Target::Postgres => {
                tcp = Some(TcpProxy::start(([127, 0, 0, 1], pg.port()).into()).await);
            }
        }
        Cloud { target, db, http, tcp, rest, pg }
    }

    /// `[sync] url` for the appliance (through the proxy).
    pub fn sync_url(&self) -> String {
        match (&self.http, &self.tcp) {
            (Some(http), _) => http.url(),
            (_, Some(tcp)) => tcp.rewrite(&self.db),
            _ => unreachable!(),
        }
    }

    /// `[sync] key` (empty for the postgres target: the URL carries the login).
    pub fn sync_key(&self) -> String {
        self.rest.as_ref().map(|r| r.key()).unwrap_or_default()
    }

    /// The `NEXERO_SYNC_*` environment for a `nexero serve` child: this cloud, quick rounds and
    /// short retries (`interval` and retry cap in seconds), `batch_rows` rows per request.
    pub fn env(&self, interval: u64, batch_rows: usize) -> Vec<(String, String)> {
        [
            ("NEXERO_SYNC_URL", self.sync_url()),
            ("NEXERO_SYNC_KEY", self.sync_key()),
            ("NEXERO_SYNC_INTERVAL_SECS", interval.to_string()),
            ("NEXERO_SYNC_RETRY_BASE_SECS", "1".into()),
            ("NEXERO_SYNC_RETRY_CAP_SECS", "2".into()),
            ("NEXERO_SYNC_BATCH_ROWS", batch_rows.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The same settings for an in-process `TestServer` (`TestServer::start_with`).
    pub fn tweak(&self, o: &mut nexero::config::Overrides, interval: u64, batch_rows: usize) {
        o.sync.url = Some(self.sync_url());
        o.sync.key = Some(nexero::config::Secret::new(self.sync_key()));
        o.sync.interval_secs = Some(interval);
        o.sync.retry_base_secs = Some(1);
        o.sync.retry_cap_secs = Some(2);
        o.sync.batch_rows = Some(batch_rows);
    }

    /// Turns every fault off.
    pub fn heal(&self) {
        if let Some(http) = &self.http {
            http.clear();
        }
        if let Some(tcp) = &self.tcp {
            tcp.set(super::fault_proxy::TcpFault::Pass);
            tcp.reset_next(0);
        }
    }

    /// Makes the cloud unreachable: every HTTP request reset, every TCP connection refused and
    /// the open ones cut.
    pub fn take_down(&self) {
        if let Some(http) = &self.http {
            http.set(super::fault_proxy::Fault::Reset);
        }
        if let Some(tcp) = &self.tcp {
            tcp.set(super::fault_proxy::TcpFault::Refuse);
            tcp.cut_all();
        }
    }
}

/// The appliance's outbox, read-only: (finished tours, of them still pending, quarantined
/// rows). Pending: never fully delivered, or changed since.
pub fn outbox(sqlite: &Path) -> (i64, i64, i64) {
    let conn = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        one(&format!("SELECT count(*) FROM tour_sessions WHERE status IN {FINISHED}")),
        one("SELECT count(*) FROM sync_outbox WHERE synced_version < version"),
        one("SELECT count(*) FROM sync_quarantine"),
    )
}

/// Every finished tour is in the outbox, none delivered, none quarantined, and the appliance
/// still holds all of it: what a cloud that was never reachable must leave behind.
pub fn assert_all_queued(sqlite: &Path) {
    let conn = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let missing: Vec<String> = super::column(
        &conn,
        &format!(
            "SELECT t.uuid FROM tour_sessions t LEFT JOIN sync_outbox o ON o.session_id = t.id
             WHERE t.status IN {FINISHED}
               AND (o.session_id IS NULL OR o.synced_version >= o.version OR o.quarantined <> 0
                    OR o.events_synced_to <> 0)"
        ),
    );
    assert!(missing.is_empty(), "finished tours not queued (or marked delivered) while the cloud was down: {missing:?}");
    let quarantined: i64 = conn.query_row("SELECT count(*) FROM sync_quarantine", [], |r| r.get(0)).unwrap();
    assert_eq!(quarantined, 0, "an unreachable cloud quarantined rows");
}

/// Calls the appliance's sync control route `path` (`status`, `now`, `retry-quarantined`) with
/// the local control token it wrote to `<data_dir>/control.token`; the answer's JSON.
pub async fn sync_control(base: &str, data_dir: &Path, path: &str) -> serde_json::Value {
    let token = std::fs::read_to_string(data_dir.join("control.token"))
        .unwrap_or_else(|e| panic!("control.token in {}: {e}", data_dir.display()));
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/sync/{path}");
    let request = if path == "status" { client.get(&url) } else { client.post(&url) };
    let response = request.bearer_auth(token.trim()).send().await.expect("sync control call");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert!((200..300).contains(&status), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// /health's `sync` section.
pub async fn health_sync(base: &str) -> serde_json::Value {
    let health: serde_json::Value = reqwest::get(format!("{base}/health")).await.unwrap().json().await.unwrap();
    health["sync"].clone()
}

/// Waits until /health's sync state is one of `states`; the section.
pub async fn wait_sync_state(base: &str, states: &[&str], timeout: Duration) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let sync = health_sync(base).await;
        if states.iter().any(|s| sync["state"] == *s) {
            return sync;
        }
        assert!(tokio::time::Instant::now() < deadline, "sync state never became {states:?}: {sync}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
