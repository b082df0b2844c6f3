-- Decisions about a whole channel (hide every item of it from public search, or undo that).
ALTER TABLE decisions DROP CONSTRAINT decisions_action_check;
ALTER TABLE decisions ADD CONSTRAINT decisions_action_check
    CHECK (action IN ('suppress', 'restore', 'hold', 'suppress_channel', 'restore_channel'));
ALTER TABLE decisions ADD COLUMN channel_id TEXT;
