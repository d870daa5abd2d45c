-- 0007: API tokens expire and carry a scope.

-- Kept next to the secret's hash so authentication stays one indexed lookup; written in the same transaction as the
-- TokenCreated event that carries the same policy (the audit log's record). NULL scope = admin (rows written before
-- scopes, and the other kinds). NULL expires_at on an api_token row (one written by an older controller during a
-- rolling upgrade) expires 30 days after its created_at (the controller's rule, TokenPolicy.effectiveExpiry).
ALTER TABLE credentials
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN scope      text CHECK (scope IN ('admin', 'read_only'));

-- Tokens made before expiry existed keep working for 30 days from this upgrade, then must be replaced.
UPDATE credentials SET expires_at = now() + interval '30 days'
WHERE kind = 'api_token' AND expires_at IS NULL AND revoked_at IS NULL;
