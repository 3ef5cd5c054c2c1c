-- Messages a bus source (NATS JetStream) could not turn into an event: malformed JSON, a body
-- that fails the event's validation, an unknown client. Each is recorded here, with why, and
-- then terminated on the bus, so it is never redelivered forever and never blocks the rest.
CREATE TABLE source_rejections (
  id          INTEGER PRIMARY KEY,
  source      TEXT NOT NULL,          -- 'nats'
  ref         TEXT NOT NULL,          -- where it came from: 'STREAM:SEQUENCE' for JetStream
  subject     TEXT NOT NULL,          -- the subject it was published on
  received_at INTEGER NOT NULL,
  code        TEXT NOT NULL,          -- malformed_json, invalid_phase, unknown_client, ...
  field       TEXT NOT NULL,          -- the field at fault, '' when none
  message     TEXT NOT NULL,          -- the human explanation, as POST /v1/events would give it
  payload     TEXT NOT NULL,          -- the message as received, cut at 4 KiB
  size        INTEGER NOT NULL,       -- the message's full size in bytes
  UNIQUE (source, ref)                -- a redelivery of a rejected message is not recorded twice
) STRICT;
