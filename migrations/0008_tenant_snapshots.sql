-- 0008: per-tenant history snapshots, so a read "as of" a past point folds at most a few events.
-- A row is one tenant's state as of its sequence `seq` (TenantHistory, every N events), JSON in `body`. Rows hold
-- nothing the event log cannot rebuild: any of them may be deleted at any time. `format` is the version of the code's
-- snapshot shape: readers ignore rows of another format and write new ones as they fold the events again.
CREATE TABLE tenant_snapshots (
    tenant_id  text        NOT NULL,
    format     integer     NOT NULL,
    seq        bigint      NOT NULL CHECK (seq >= 1),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, format, seq)
);

-- "As of 14:02" resolves to the tenant's last event recorded at or before that time: one index probe, not a scan of
-- the tenant's events.
CREATE INDEX events_tenant_recorded_at ON events (tenant_id, recorded_at);
