-- Every webhook's status moves forward once (failure recorder) and its row was already updated once
-- (published_at). With `status` indexed and full pages, each of those updates wrote a new row version into
-- all seven of raw_payloads' indexes: 21 µs of PostgreSQL per row, the most expensive statement of a backlog
-- drain (docs/performance.md). Without an index on `status`, and with room left on each page, the status
-- update is HOT: the new version stays on the same page and no index is touched (3× cheaper measured).
-- The console's status filter still works: it is bounded by time and tenant (raw_payloads_time,
-- raw_payloads_tenant_time) and pages newest-first with a LIMIT; failures are found through the failures
-- table's own indexes.
DROP INDEX IF EXISTS raw_payloads_status;
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'raw_payloads'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 80)', part);
    END LOOP;
END $$;
