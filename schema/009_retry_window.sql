-- The retry horizon counts from a message's first attempt, not from its creation: a message
-- planned with a delay or deferred past quiet hours keeps its whole retry window.
ALTER TABLE messages ADD COLUMN first_attempt_at INTEGER;  -- ms since the epoch; NULL until claimed
UPDATE messages SET first_attempt_at =
  (SELECT MIN(started_at) FROM attempts WHERE attempts.message_id = messages.id)
  WHERE attempts > 0;
