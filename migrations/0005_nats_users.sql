-- 0005: the bus as the tenant boundary (nats-server in operator mode).

-- Each enrolled agent's NATS user: the public half of the nkey the agent generated itself (its seed never leaves
-- the agent's state folder). The controller signs short-lived user JWTs for exactly this key, limited to the peer's
-- own subjects. Written in the same transaction as PeerEnrolled; revoked in the same transaction as PeerRemoved.
CREATE TABLE nats_users (
    tenant_id   text        NOT NULL,
    peer_id     text        NOT NULL,
    public_key  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, peer_id)
);
CREATE INDEX nats_users_revoked ON nats_users (revoked_at) WHERE revoked_at IS NOT NULL;

-- The routeplane account JWT carries the revocation list (user key -> time); every controller may push it to the
-- NATS resolver. One row orders the pushes: each push takes the row's lock and an issued-at strictly above the last,
-- so the resolver never keeps an older list over a newer one.
CREATE TABLE nats_account (
    id          int    PRIMARY KEY CHECK (id = 1),
    issued_at   bigint NOT NULL
);
INSERT INTO nats_account (id, issued_at) VALUES (1, 0);
