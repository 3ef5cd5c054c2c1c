-- Fallback: a message to a person that failed for good is sent again on their next channel.
ALTER TABLE messages ADD COLUMN fallback_of TEXT;  -- the id of the message this one replaces
