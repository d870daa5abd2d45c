-- 0004: the relay claims, per (tenant, peer), the oldest unsent row when no older unsent row of the same
-- peer exists (Sources/Messaging/OutboxRelay.swift); this index keeps that check cheap as history grows.
CREATE INDEX outbox_unsent_peer ON outbox (tenant_id, peer_id, id) WHERE sent_at IS NULL;
