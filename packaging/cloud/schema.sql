-- Nexero Showroom cloud schema (PostgreSQL 13+ / Supabase), the tables cloud sync writes.
--
-- Apply it once to the cloud database (`nexero sync schema | psql "$URL"`, or the Supabase SQL
-- editor). It is idempotent: running it again changes nothing. Every appliance ("site") writes
-- its completed tours here, keyed by the appliance's own UUIDs, so a resend is harmless:
--   * vr_sessions      one row per tour (upserted: a later change on the appliance overwrites it)
--   * view_events      events of kind `view`
--   * poi_visits       events of kind `poi`
--   * tracking_events  every other event kind (tracking, unit_selection, connect, custom), with
--                      `event_type` as sent and the kind in metadata->>'kind'
-- Events are immutable: they are inserted once and never rewritten (ON CONFLICT DO NOTHING).
-- Column names are the contract between the appliance and this database; do not rename them.
-- Times are timestamptz (UTC). `metadata` holds what has no column of its own.
-- No updated_at trigger on purpose: `updated_at` is the appliance's own value, so the cloud copy
-- shows when the tour last changed on the appliance.

CREATE TABLE IF NOT EXISTS nexero_sites (
    site_id        uuid        PRIMARY KEY,
    name           text,
    last_sync_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vr_sessions (
    id                uuid        PRIMARY KEY,              -- the appliance's tour UUID (UUIDv7)
    site_id           uuid        NOT NULL,                 -- the appliance that recorded it
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    duration_seconds  integer     CHECK (duration_seconds IS NULL OR duration_seconds >= 0),
    status            text        NOT NULL CHECK (status IN ('active', 'completed', 'timed_out', 'abandoned', 'error')),
    customer_id       text,
    property_id       text,
    device_type       text,
    external_id       text,                                 -- the headset's own session id, if it sent one
    device_key        text,                                 -- device key header, else the headset's address
    event_count       integer     NOT NULL DEFAULT 0,
    time_warnings     text,                                 -- why times are not the headset's own
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS vr_sessions_site ON vr_sessions (site_id, started_at);
CREATE INDEX IF NOT EXISTS vr_sessions_started ON vr_sessions (started_at);
CREATE INDEX IF NOT EXISTS vr_sessions_property ON vr_sessions (property_id);
CREATE INDEX IF NOT EXISTS vr_sessions_customer ON vr_sessions (customer_id);
CREATE INDEX IF NOT EXISTS vr_sessions_status ON vr_sessions (status);

CREATE TABLE IF NOT EXISTS tracking_events (
    id                uuid        PRIMARY KEY,              -- the appliance's event UUID (UUIDv7)
    session_id        uuid        NOT NULL REFERENCES vr_sessions (id) ON DELETE CASCADE,
    event_type        text        NOT NULL,
    "timestamp"       timestamptz NOT NULL,                 -- when it happened (headset time if sent)
    zone_name         text,
    object_name       text,
    position          jsonb,                                -- {"x":…, "y":…, "z":…} or null
    rotation          jsonb,                                -- {"pitch":…, "yaw":…, "roll":…} or null
    gaze_target       text,
    dwell_time_ms     bigint,                               -- null when absent or not a real dwell time
    interaction_type  text,
    metadata          jsonb       NOT NULL DEFAULT '{}',    -- kind, name, source, received_at, dwell_text, dwell_invalid, data
    site_id           uuid        NOT NULL
);
CREATE INDEX IF NOT EXISTS tracking_events_session ON tracking_events (session_id, "timestamp");

CREATE TABLE IF NOT EXISTS view_events (
    id                uuid        PRIMARY KEY,
    session_id        uuid        NOT NULL REFERENCES vr_sessions (id) ON DELETE CASCADE,
    view_name         text,
    duration_string   text,                                 -- the duration as the headset sent it
    duration_seconds  integer,                              -- rounded; null when absent or invalid
    duration_ms       bigint,                               -- the same, exact
    received_at       timestamptz NOT NULL,
    event_time        timestamptz NOT NULL,
    metadata          jsonb       NOT NULL DEFAULT '{}',    -- event_type, source, dwell_invalid, data
    site_id           uuid        NOT NULL
);
CREATE INDEX IF NOT EXISTS view_events_session ON view_events (session_id, event_time);

CREATE TABLE IF NOT EXISTS poi_visits (
    id                uuid        PRIMARY KEY,
    session_id        uuid        NOT NULL REFERENCES vr_sessions (id) ON DELETE CASCADE,
    poi_name          text,
    parent_zone       text,
    poi_source        text,
    duration_string   text,
    duration_seconds  integer,
    duration_ms       bigint,
    received_at       timestamptz NOT NULL,
    event_time        timestamptz NOT NULL,
    metadata          jsonb       NOT NULL DEFAULT '{}',    -- event_type, dwell_invalid, data
    site_id           uuid        NOT NULL
);
CREATE INDEX IF NOT EXISTS poi_visits_session ON poi_visits (session_id, event_time);

-- Supabase exposes tables through its Data API: keep them closed to the anon and publishable
-- keys. The service_role / secret key (and a direct postgres:// login as the owner) bypass RLS.
ALTER TABLE nexero_sites ENABLE ROW LEVEL SECURITY;
ALTER TABLE vr_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE tracking_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE view_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE poi_visits ENABLE ROW LEVEL SECURITY;
