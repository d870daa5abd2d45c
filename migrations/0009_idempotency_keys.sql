-- 0009: Idempotency-Key on API writes (Stripe's semantics): one row per (tenant, principal, key) holding a fingerprint
-- of the request and, once it appended, the first answer. A row is claimed (`in_flight`, with an owner and a short
-- lease) before the write is decided, and becomes `done` in the SAME transaction as the events the write appends
-- (idempotency_finish), so a crash never leaves events without their record or a record without its events. A claim
-- whose request died (controller killed) is taken over once its lease has passed; idempotency_finish then refuses the
-- old owner's commit (SQLSTATE RP410), so one key never appends twice. Rows expire after 24 h and are purged in
-- bounded batches by the controllers. Nothing here feeds projections: the table may be emptied at any time (retries
-- of the keys it held then execute again).
CREATE TABLE idempotency_keys (
    tenant_id   text        NOT NULL,
    principal   text        NOT NULL,
    idem_key    text        NOT NULL,
    fingerprint text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    owner       text,
    lease_until timestamptz,
    status      integer,
    body        text,
    etag        bigint,
    seq         bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, principal, idem_key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- Marks a claimed key done with its answer; raises RP410 when the caller no longer holds the claim (its lease passed
-- and another request took the key over), which rolls back the write it is part of.
CREATE FUNCTION idempotency_finish(p_tenant text, p_principal text, p_key text, p_owner text,
                                   p_status integer, p_body text, p_etag bigint, p_seq bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE idempotency_keys
       SET state = 'done', owner = NULL, lease_until = NULL, status = p_status, body = p_body, etag = p_etag, seq = p_seq
     WHERE tenant_id = p_tenant AND principal = p_principal AND idem_key = p_key AND owner = p_owner AND state = 'in_flight';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key % is no longer held by this request', p_key USING ERRCODE = 'RP410';
    END IF;
END
$$;
