-- The lease query orders ready jobs by priority DESC, run_at, id. The first
-- index (status, run_at, priority) could not give that order, so every lease
-- sorted all queued rows: O(n) per lease, O(n^2) to drain a backlog. This
-- index matches the ORDER BY, so a lease reads the first ready row.
DROP INDEX jobs_ready;
CREATE INDEX jobs_lease_order ON jobs (status, priority DESC, run_at, id);
