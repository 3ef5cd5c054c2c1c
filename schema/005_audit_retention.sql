-- Retention ([audit] retain_bodies): pruning a message's rendered text sets its subject and body
-- to NULL and keeps its content_hash; the audit chain holds only hashes of what was sent
-- (message.rendered), so it still verifies. This index finds the bodies still kept, oldest
-- first. Nothing depends on it but speed: IF NOT EXISTS keeps the migration safe to re-run.
CREATE INDEX IF NOT EXISTS messages_body_kept ON messages(created_at) WHERE body IS NOT NULL;
