-- Drills, scheduled drills and notification deadlines (obligations).

-- A drill: one synthetic incident run through the client's real plan, every message marked as
-- a drill. Its messages are those of incident_id (an incident of its own, drill = 1).
CREATE TABLE drills (
  id          TEXT PRIMARY KEY,
  client_id   TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  event_id    TEXT NOT NULL,
  phase       TEXT NOT NULL,
  severity    TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  actor       TEXT NOT NULL,      -- the token's name, or "schedule"
  scheduled   INTEGER NOT NULL    -- 1 when the client's drill schedule started it
) STRICT;
CREATE INDEX drills_client ON drills(client_id, started_at);

-- At most one drill schedule per client: the daemon starts a drill at next_at.
CREATE TABLE drill_schedules (
  client_id    TEXT PRIMARY KEY,
  body         TEXT NOT NULL,     -- the schedule as JSON, normalised
  every_ms     INTEGER NOT NULL,
  phase        TEXT NOT NULL,
  severity     TEXT NOT NULL,
  window_start INTEGER NOT NULL,  -- minutes after local midnight, in the client's zone
  window_end   INTEGER NOT NULL,  -- exclusive; > window_start
  days         INTEGER NOT NULL,  -- bit mask, bit 0 = Monday ... bit 6 = Sunday
  next_at      INTEGER NOT NULL,
  last_drill   TEXT,
  updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX drill_schedules_due ON drill_schedules(next_at);

-- The client's notification obligations ("notify the authority within 72h of identification").
CREATE TABLE client_obligations (
  client_id  TEXT PRIMARY KEY,
  body       TEXT NOT NULL,       -- {"obligations": [...]}, normalised
  version    INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

-- An obligation whose clock runs for one incident. Its reminders and its overdue notice are
-- ordinary messages (kind 'reminder' and 'overdue', rule 'obligation:ID'), so they survive
-- restarts like any other message.
CREATE TABLE incident_obligations (
  client_id     TEXT NOT NULL,
  incident_id   TEXT NOT NULL,
  obligation_id TEXT NOT NULL,
  description   TEXT NOT NULL,
  event_id      TEXT NOT NULL,    -- the event that started the clock
  phase         TEXT NOT NULL,
  started_at    INTEGER NOT NULL,
  due_at        INTEGER NOT NULL,
  within_ms     INTEGER NOT NULL,
  roles         TEXT NOT NULL,    -- JSON array
  met_at        INTEGER,
  overdue_at    INTEGER,          -- when the daemon saw the deadline pass unmet
  met_by        TEXT,
  note          TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (client_id, incident_id, obligation_id)
) STRICT;
CREATE INDEX incident_obligations_due ON incident_obligations(due_at) WHERE met_at IS NULL;
