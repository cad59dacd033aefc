-- Nexero Showroom SQLite schema.
--
-- Applied at start-up by versioned migrations: each numbered migration section below runs once, in one
-- transaction, and sets PRAGMA user_version = N. Never edit a released section; append a new one.
-- Times are unix milliseconds (UTC). Row keys are INTEGER (time-ordered inserts keep B-trees
-- append-only); the UUIDs that leave the appliance are UUIDv7, also time-ordered.

-- migration: 1

-- Every upload exactly as it arrived, written in the same transaction as what was parsed from it.
CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY,
    received_at     INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    client_addr     TEXT    NOT NULL,
    device_key      TEXT    NOT NULL,
    content_type    TEXT,
    body            BLOB    NOT NULL,
    status          INTEGER NOT NULL,            -- the HTTP status we answered
    outcome         TEXT    NOT NULL CHECK (outcome IN ('stored', 'duplicate', 'ignored', 'rejected')),
    detail          TEXT,                        -- what it was recognised as, or why it was refused
    events_stored   INTEGER NOT NULL DEFAULT 0,
    session_id      INTEGER REFERENCES tour_sessions(id)
);
-- Unrecognised uploads: counted for the dashboard and re-read by `nexero reprocess`.
CREATE INDEX inbox_rejected ON inbox(id) WHERE outcome = 'rejected';

-- One buyer's tour in one headset.
CREATE TABLE tour_sessions (
    id                INTEGER PRIMARY KEY,
    uuid              TEXT    NOT NULL UNIQUE,   -- UUIDv7, the id the API and the cloud use
    external_id       TEXT    UNIQUE,            -- the headset's own id (GUID, UUID or any string)
    device_key        TEXT    NOT NULL,          -- device key header, else the client address
    status            TEXT    NOT NULL CHECK (status IN ('active', 'completed', 'timed_out', 'abandoned')),
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    last_event_at     INTEGER NOT NULL,
    duration_ms       INTEGER,
    headset_start     TEXT,                      -- the summary's own values, as sent
    headset_end       TEXT,
    headset_duration  TEXT,
    customer_id       TEXT,
    property_id       TEXT,
    device_type       TEXT,
    event_count       INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX tour_sessions_active ON tour_sessions(device_key) WHERE status = 'active';
CREATE INDEX tour_sessions_started ON tour_sessions(started_at);

-- Everything a buyer did in a tour.
CREATE TABLE events (
    id                INTEGER PRIMARY KEY,
    uuid              BLOB    NOT NULL,          -- UUIDv7 (16 bytes) for the cloud copy
    session_id        INTEGER NOT NULL REFERENCES tour_sessions(id),
    inbox_id          INTEGER NOT NULL REFERENCES inbox(id),
    kind              TEXT    NOT NULL,          -- view, poi, unit_selection, connect, tracking, custom
    event_type        TEXT    NOT NULL,
    name              TEXT,                      -- view / POI / unit name
    zone              TEXT,                      -- POI parent or category, tracking zone
    source            TEXT,                      -- POI source / click source
    occurred_at       INTEGER NOT NULL,          -- headset time if sent, else arrival time
    received_at       INTEGER NOT NULL,
    dwell_text        TEXT,                      -- duration as sent
    dwell_ms          INTEGER,                   -- NULL when absent or invalid
    dwell_invalid     TEXT,                      -- why the sent duration is not a real dwell time
    object_name       TEXT,
    gaze_target       TEXT,
    interaction_type  TEXT,
    pos_x REAL, pos_y REAL, pos_z REAL,
    rot_pitch REAL, rot_yaw REAL, rot_roll REAL,
    data              TEXT,                      -- every other field, JSON
    dedupe_key        INTEGER                    -- recognises a resent event
);
CREATE INDEX events_timeline ON events(session_id, occurred_at);
CREATE UNIQUE INDEX events_dedupe ON events(session_id, dedupe_key) WHERE dedupe_key IS NOT NULL;

-- Per-day roll-up kept by the writer, so dashboards never scan raw events. Keyed property first:
-- a property's dashboard reads one contiguous range; cross-property reports use daily_totals.
CREATE TABLE daily_rollup (
    day          TEXT    NOT NULL,               -- YYYY-MM-DD in the site time zone
    property_id  TEXT    NOT NULL,               -- '' when unknown
    kind         TEXT    NOT NULL,
    zone         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    events       INTEGER NOT NULL,
    dwell_ms     INTEGER NOT NULL,
    dwell_events INTEGER NOT NULL,               -- events with a valid dwell time
    PRIMARY KEY (property_id, day, kind, zone, name)
) WITHOUT ROWID;

-- The same over all properties, for cross-property rankings (top POIs and views).
CREATE TABLE daily_totals (
    day          TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    zone         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    events       INTEGER NOT NULL,
    dwell_ms     INTEGER NOT NULL,
    dwell_events INTEGER NOT NULL,
    PRIMARY KEY (kind, day, zone, name)
) WITHOUT ROWID;

-- Small key/value facts about this database (created_by version, health probe).
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- migration: 2

-- The upload's Idempotency-Key header, so `nexero reprocess` recognises resends as the live path does.
ALTER TABLE inbox ADD COLUMN idempotency_key TEXT;

-- migration: 3

-- Why a tour's times are not the headset's own (a summary without usable times), shown with it.
ALTER TABLE tour_sessions ADD COLUMN time_warnings TEXT;
-- Headset GUIDs are case-insensitive: look-ups by the headset's own id ignore case.
CREATE INDEX tour_sessions_external_nocase ON tour_sessions(external_id COLLATE NOCASE);

-- The Idempotency-Key of every upload that carried one, kept for resend_window_hours: a resend
-- is recognised whatever tour or address it arrives in, and a reused key with another body is
-- refused.
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    fingerprint  INTEGER NOT NULL,               -- the body's identity (normalised JSON)
    inbox_id     INTEGER NOT NULL REFERENCES inbox(id),
    received_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys(received_at);

-- A resent event (its event id, or a body carrying its own time) is recognised across the recent
-- tours of its headset, no longer only within one tour: the write side looks its key up in those
-- tours (events_dedupe), found through this index.
CREATE INDEX tour_sessions_device ON tour_sessions(device_key, started_at);

-- migration: 4

-- Staff who sign in to the dashboard. Names are case-insensitive; passwords are argon2id PHC
-- strings. An admin manages users, headsets and settings; sales staff see everything else.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'sales')),
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Signed-in browsers. Only the SHA-256 of the cookie's token is kept, so a copy of the file does
-- not sign anyone in. Removing a user or changing their password ends their sessions.
CREATE TABLE staff_sessions (
    token_hash     BLOB    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX staff_sessions_user ON staff_sessions(user_id);
CREATE INDEX staff_sessions_expiry ON staff_sessions(expires_at);

-- Read-only API tokens for BI tools and CRMs, shown once and kept as SHA-256.
CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    token_hash     BLOB    NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
);

-- Every headset (device key) ever seen, kept by the writer with each upload, and the name staff
-- give it.
CREATE TABLE headsets (
    device_key     TEXT    PRIMARY KEY,
    name           TEXT,
    first_seen_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    last_tour_id   INTEGER REFERENCES tour_sessions(id)
) WITHOUT ROWID;
INSERT INTO headsets (device_key, first_seen_at, last_seen_at, last_tour_id)
    SELECT device_key, min(started_at), max(last_event_at), max(id) FROM tour_sessions GROUP BY device_key;

-- The tour list filters by status and property and sorts by start: each filter reads its own
-- range in start order.
CREATE INDEX tour_sessions_status ON tour_sessions(status, started_at);
CREATE INDEX tour_sessions_property ON tour_sessions(property_id, started_at);
-- The old API's customer filter; most tours have no customer id.
CREATE INDEX tour_sessions_customer ON tour_sessions(customer_id, started_at) WHERE customer_id IS NOT NULL;
-- The raw uploads behind a tour.
CREATE INDEX inbox_session ON inbox(session_id) WHERE session_id IS NOT NULL;

-- migration: 5

-- Cloud sync's outbox: one row per ended tour, written in the same transaction as the change
-- that queues it (the tour's ending in tours::complete, a late event). `version` counts those
-- changes; the tour is pending while `synced_version < version`, so a change after a sync queues
-- it again. Events are immutable and only ever appended, so `events_synced_to` (the highest
-- events.id of this tour the cloud has) says which of its events are still to send.
CREATE TABLE sync_outbox (
    session_id        INTEGER PRIMARY KEY REFERENCES tour_sessions(id),
    version           INTEGER NOT NULL DEFAULT 1,
    synced_version    INTEGER NOT NULL DEFAULT 0,
    events_synced_to  INTEGER NOT NULL DEFAULT 0,
    queued_at         INTEGER NOT NULL,               -- since when it waits (oldest unsynced)
    synced_at         INTEGER,                        -- last time the cloud took all of it
    next_attempt_at   INTEGER NOT NULL DEFAULT 0,     -- not before (after a failure)
    attempts          INTEGER NOT NULL DEFAULT 0,     -- failures since the last success
    last_error        TEXT,
    quarantined       INTEGER NOT NULL DEFAULT 0      -- the cloud refuses the tour row itself
);
CREATE INDEX sync_outbox_pending ON sync_outbox(queued_at) WHERE synced_version < version AND quarantined = 0;

-- Rows the cloud refused for what they hold (not for being unreachable): kept with the cloud's
-- answer until an admin retries them (`nexero sync retry-quarantined`). Nothing is deleted.
CREATE TABLE sync_quarantine (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL REFERENCES tour_sessions(id),
    event_id        INTEGER REFERENCES events(id),    -- NULL: the tour's own row
    target_table    TEXT    NOT NULL,                 -- the cloud table
    code            TEXT,                             -- SQLSTATE or PGRSTnnn, when the cloud gave one
    error           TEXT    NOT NULL,                 -- the cloud's answer
    payload         TEXT    NOT NULL,                 -- the row as sent (JSON)
    quarantined_at  INTEGER NOT NULL
);
CREATE INDEX sync_quarantine_session ON sync_quarantine(session_id);

-- Tours that ended before this version have never been sent: queue them all.
INSERT INTO sync_outbox (session_id, queued_at)
    SELECT id, coalesce(ended_at, updated_at) FROM tour_sessions WHERE status <> 'active';
