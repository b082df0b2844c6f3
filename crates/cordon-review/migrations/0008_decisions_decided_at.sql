-- Decisions by time: the console's decisions per hour and the moderator agreement gauge
-- (cordon_model_reviews, the last 24 hours) read recent decisions only.
CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at);
