-- Herald's first schema. Times are INTEGER milliseconds since the Unix epoch (UTC).
-- JSON columns hold arrays or objects as text.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE clients (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  timezone   TEXT NOT NULL,
  locale     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER            -- soft delete: the delivery history of a client outlives it
) STRICT;

CREATE TABLE contacts (
  client_id   TEXT NOT NULL REFERENCES clients(id),
  id          TEXT NOT NULL,
  name        TEXT NOT NULL,
  roles       TEXT NOT NULL,    -- JSON array
  email       TEXT NOT NULL,
  phone       TEXT NOT NULL,
  chat        TEXT NOT NULL,
  timezone    TEXT NOT NULL,
  quiet_start INTEGER,          -- minutes after local midnight
  quiet_end   INTEGER,
  channels    TEXT NOT NULL,    -- JSON array, order of preference
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (client_id, id)
) STRICT;

CREATE TABLE endpoints (
  client_id  TEXT NOT NULL REFERENCES clients(id),
  id         TEXT NOT NULL,
  type       TEXT NOT NULL,
  url        TEXT NOT NULL,
  secrets    TEXT NOT NULL,     -- JSON array of whsec_ secrets
  enabled    INTEGER NOT NULL DEFAULT 1,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, id)
) STRICT;

CREATE TABLE plans (
  client_id  TEXT PRIMARY KEY REFERENCES clients(id),
  body       TEXT NOT NULL,     -- the plan as JSON, normalised
  version    INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE incidents (
  client_id      TEXT NOT NULL,
  id             TEXT NOT NULL,
  title          TEXT NOT NULL,
  severity       TEXT NOT NULL,
  phase          TEXT NOT NULL,
  previous_phase TEXT,
  drill          INTEGER NOT NULL,
  opened_at      INTEGER NOT NULL,
  phase_since    INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (client_id, id)
) STRICT;

CREATE TABLE events (
  client_id   TEXT NOT NULL,
  event_id    TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  phase       TEXT NOT NULL,
  previous_phase TEXT,          -- the incident's phase before this event, if any
  severity    TEXT NOT NULL,
  title       TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  summary     TEXT NOT NULL,
  details     TEXT NOT NULL,
  drill       INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  source      TEXT NOT NULL,
  token_name  TEXT NOT NULL,
  applied     INTEGER NOT NULL, -- 0 when out of order: recorded, but the phase did not move
  messages    INTEGER NOT NULL,
  PRIMARY KEY (client_id, event_id)
) STRICT;
CREATE INDEX events_incident ON events(client_id, incident_id, occurred_at);

CREATE TABLE messages (
  seq           INTEGER PRIMARY KEY,  -- insertion order, for stable cursors
  id            TEXT NOT NULL UNIQUE,
  client_id     TEXT NOT NULL,
  event_id      TEXT NOT NULL,
  incident_id   TEXT NOT NULL,
  phase         TEXT NOT NULL,
  rule_id       TEXT NOT NULL,
  contact_id    TEXT NOT NULL,        -- '' for endpoints
  endpoint_id   TEXT NOT NULL,        -- '' for people
  role          TEXT NOT NULL,
  channel       TEXT NOT NULL,
  status        TEXT NOT NULL,
  attempts      INTEGER NOT NULL DEFAULT 0,
  update_number INTEGER NOT NULL DEFAULT 1,
  created_at    INTEGER NOT NULL,
  send_at       INTEGER NOT NULL,
  delivered_at  INTEGER,
  last_error    TEXT NOT NULL DEFAULT '',
  address       TEXT NOT NULL DEFAULT '',  -- where it went (email/phone); never a webhook URL
  subject       TEXT,                      -- what was sent, filled at the first attempt
  body          TEXT,
  content_hash  TEXT
) STRICT;
CREATE INDEX messages_due ON messages(send_at) WHERE status IN ('scheduled', 'retrying');
CREATE INDEX messages_incident ON messages(client_id, incident_id);
CREATE INDEX messages_status ON messages(status);

CREATE TABLE attempts (
  message_id  TEXT NOT NULL REFERENCES messages(id),
  number      INTEGER NOT NULL,
  started_at  INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  outcome     TEXT NOT NULL,
  status_code INTEGER NOT NULL,
  error       TEXT NOT NULL,
  PRIMARY KEY (message_id, number)
) STRICT;

-- Append-only and hash-chained: hash = sha256(prev_hash || canonical record).
CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  kind      TEXT NOT NULL,
  actor     TEXT NOT NULL,
  client_id TEXT NOT NULL,
  subject   TEXT NOT NULL,
  data      TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
) STRICT;
CREATE INDEX audit_kind ON audit(kind, seq);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
