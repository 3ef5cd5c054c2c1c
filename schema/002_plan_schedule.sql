-- The plan's schedule: repeats, quiet-hours deferral, acknowledgements and escalations.

-- Every how long a fresh update follows while the incident stays in the phase (NULL: never).
ALTER TABLE messages ADD COLUMN repeat_ms INTEGER;
-- When the message was due before quiet hours deferred it; repeats count from here.
ALTER TABLE messages ADD COLUMN planned_at INTEGER;
ALTER TABLE messages ADD COLUMN quiet_hours TEXT NOT NULL DEFAULT 'respect';
-- 'notify' for the plan's own messages, 'escalation' for those an unacknowledged rule added.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'notify';
ALTER TABLE messages ADD COLUMN acknowledged_at INTEGER;

CREATE TABLE acks (
  message_id  TEXT PRIMARY KEY REFERENCES messages(id),
  client_id   TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  phase       TEXT NOT NULL,
  rule_id     TEXT NOT NULL,
  contact_id  TEXT NOT NULL,
  at          INTEGER NOT NULL,
  remote      TEXT NOT NULL          -- the address the confirmation came from
) STRICT;
CREATE INDEX acks_incident ON acks(client_id, incident_id, phase, rule_id);

CREATE TABLE escalations (
  id          TEXT PRIMARY KEY,
  client_id   TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  event_id    TEXT NOT NULL,
  phase       TEXT NOT NULL,
  rule_id     TEXT NOT NULL,
  due_at      INTEGER NOT NULL,
  to_roles    TEXT NOT NULL,         -- JSON array
  channels    TEXT NOT NULL,         -- JSON array: the rule's channels
  quiet_hours TEXT NOT NULL,
  status      TEXT NOT NULL,         -- pending, fired, acknowledged, cancelled
  resolved_at INTEGER,
  messages    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX escalations_due ON escalations(due_at) WHERE status = 'pending';
CREATE INDEX escalations_incident ON escalations(client_id, incident_id);
