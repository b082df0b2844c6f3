-- Reports by filing time: the transparency report reads a period's reports.
CREATE INDEX reports_by_time ON reports (created_at);
