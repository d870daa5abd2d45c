-- 0006: audit free-text search served by an index.
-- `GET /api/events/audit?search=…` filters `data::text ILIKE '%…%'`; a trigram GIN index (pg_trgm, PostgreSQL's contrib,
-- a trusted extension since PostgreSQL 13: a database owner may create it) serves that filter, so a search reads the
-- matching events instead of every event of the tenant. Where pg_trgm is not installed the migration still succeeds and
-- search stays bounded without the index (minimum length, its own statement timeout, a per-tenant concurrency limit:
-- see AuditQuery and AuditSearchGate). Once the extension appears, a later migration (or an operator's
-- `CREATE EXTENSION pg_trgm` and the index below) turns the index on; the query does not change.
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%); audit search runs without its index', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        -- The expression must match AuditQuery's `data::text` exactly for the planner to use it.
        EXECUTE 'CREATE INDEX IF NOT EXISTS events_data_trgm ON events USING gin ((data::text) gin_trgm_ops)';
    END IF;
END
$$;
