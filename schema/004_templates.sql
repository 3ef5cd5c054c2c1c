-- Templates stored through the API: every PUT and DELETE appends a version, so the history of a
-- template stays readable and each message can say which version wrote it.
CREATE TABLE templates (
  client_id  TEXT NOT NULL,          -- '' for a template that serves every client
  name       TEXT NOT NULL,          -- containment.email.subject, partial.footer, any.sms.text.de
  version    INTEGER NOT NULL,       -- 1, 2, ... per client and name
  body       TEXT,                   -- NULL: deleted at this version (the shipped one serves)
  created_at INTEGER NOT NULL,
  actor      TEXT NOT NULL,          -- the token's name
  PRIMARY KEY (client_id, name, version)
) STRICT;

-- What wrote each message: a JSON array of "NAME@shipped" or "NAME@CLIENT:vN", one per part.
ALTER TABLE messages ADD COLUMN templates TEXT;
-- SMS only: the segments the text took.
ALTER TABLE messages ADD COLUMN sms_segments INTEGER;
