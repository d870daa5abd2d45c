-- 0003: what the controller API needs besides events and projections.

-- Secrets the API accepts, kept only as SHA-256 (hex) of a random secret of at least 128 bits:
--   api_token: an operator's `Authorization: Token …` (subject = token id);
--   setup_key: lets an agent enroll a peer (subject = setup key id);
--   peer:      an enrolled agent's own credential (subject = peer id; reads only its own view).
-- Each row is written in the same transaction as the event that creates it (TokenCreated,
-- SetupKeyCreated, PeerEnrolled) and revoked in the same transaction as the event that ends it.
-- Policy (expiry, usage limit, revocation of setup keys) lives in the events; this table only
-- finds the tenant and subject of a presented secret without scanning anything.
CREATE TABLE credentials (
    secret_hash text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('api_token', 'setup_key', 'peer')),
    subject_id  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    UNIQUE (tenant_id, kind, subject_id)
);

-- The audit log filters one tenant's events by target object (metadata.target), newest first.
CREATE INDEX events_audit_target ON events (tenant_id, (metadata ->> 'target'), seq);

-- What agents last reported (status messages over NATS): not events, a heartbeat table.
CREATE TABLE peer_status (
    tenant_id       text        NOT NULL,
    peer_id         text        NOT NULL,
    applied_version bigint      NOT NULL DEFAULT 0,
    status          jsonb       NOT NULL DEFAULT '{}',   -- chosen routing peer per HA network, candidate health
    last_seen       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, peer_id)
);
