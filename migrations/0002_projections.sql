-- 0002: projections. Read models folded from the events, per tenant, advanced asynchronously behind the
-- append by the projection runner (Sources/Projections). Everything here can be rebuilt from `events`
-- (`routeplane projections rebuild`), and `routeplane projections verify` checks that it equals a rebuild.

-- How far each tenant's projections are: every row below reflects exactly the events 1..seq of the tenant.
-- Advanced in the same transaction as the rows it covers, under the advisory lock
-- hashtextextended('routeplane.projection:' || tenant_id, 0), so only one runner advances a tenant at a time.
CREATE TABLE projection_checkpoints (
    tenant_id  text        PRIMARY KEY,
    seq        bigint      NOT NULL DEFAULT 0 CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The route view of every existing peer (what its agent must install).
--   version: the tenant sequence number of the event that last changed the view (the rebuild stamps a view
--            it finds changed with the tenant's head); strictly increasing per peer; the agent applies a view
--            only if its version is newer than the one it holds.
--   digest:  SHA-256 (hex) of body.
--   body:    the view's canonical JSON (`PeerRouteView.canonicalJSON()`); `json`, not `jsonb`, so the text
--            round-trips byte for byte.
-- A removed peer has no row (its last outbox row is a tombstone).
CREATE TABLE peer_views (
    tenant_id  text        NOT NULL,
    peer_id    text        NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    digest     text        NOT NULL,
    body       json        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, peer_id)
);

-- One row per (peer, version) whose view changed, written in the same transaction as the view.
-- The relay claims unsent rows in id order with FOR UPDATE SKIP LOCKED, publishes them with
-- Nats-Msg-Id = tenant_id:peer_id:version, and sets sent_at after the acknowledgement.
--   removed: the peer was removed; body is its empty view, so its agent clears every route it installed.
CREATE TABLE outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  text        NOT NULL,
    peer_id    text        NOT NULL,
    version    bigint      NOT NULL,
    digest     text        NOT NULL,
    body       json        NOT NULL,
    removed    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    UNIQUE (tenant_id, peer_id, version)
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;

-- Current routes, groups and peers of each tenant for the API (NetBird-shaped JSON of RouteModel's
-- Route / Group / Peer, sorted keys). version = sequence of the last event that touched the object (an ETag).
CREATE TABLE projected_routes (
    tenant_id text   NOT NULL,
    route_id  text   NOT NULL,
    version   bigint NOT NULL,
    body      json   NOT NULL,
    PRIMARY KEY (tenant_id, route_id)
);

CREATE TABLE projected_groups (
    tenant_id text   NOT NULL,
    group_id  text   NOT NULL,
    version   bigint NOT NULL,
    body      json   NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);

CREATE TABLE projected_peers (
    tenant_id text   NOT NULL,
    peer_id   text   NOT NULL,
    version   bigint NOT NULL,
    body      json   NOT NULL,
    PRIMARY KEY (tenant_id, peer_id)
);
