-- API tokens made through POST /v1/tokens (tokens in the config file are not stored here).
-- Only the SHA-256 of a token is kept; revoking deletes the row, the audit log keeps the story.
CREATE TABLE api_tokens (
  name       TEXT PRIMARY KEY,
  sha256     TEXT NOT NULL UNIQUE,  -- lowercase hex of sha256(token)
  scopes     TEXT NOT NULL,         -- JSON array: admin, audit, ingest
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,         -- the name of the token that made it
  expires_at INTEGER                -- NULL: never
) STRICT;
