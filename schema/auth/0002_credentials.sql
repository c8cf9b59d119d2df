-- 0002_credentials: what ledgerd adds to the v1 auth database (decisions D3).
--
-- * Password and API-key hashes are argon2id in the PHC form (about 97 characters), which does
--   not fit v1's CHAR(60); bcrypt hashes imported from v1 stay valid.
-- * API keys are looked up by the SHA-256 of the full key (key_digest, unique, indexed), never by
--   a scan. Keys imported from v1 have no digest and are not accepted (docs/auth.md).
-- * Dashboard sessions: one row per login (the `sid` claim of its access tokens) and rotating
--   refresh tokens stored as HMAC-SHA256 digests. A refresh token presented twice revokes its
--   session (reuse detection).

ALTER TABLE accounts ALTER COLUMN password_hash TYPE TEXT;

ALTER TABLE api_keys ALTER COLUMN key_hash TYPE TEXT;
ALTER TABLE api_keys ADD COLUMN key_digest CHAR(64);
CREATE UNIQUE INDEX idx_api_keys_key_digest ON api_keys (key_digest);
-- v1 deployed api_keys without a foreign key; NOT VALID keeps imported orphans loadable.
ALTER TABLE api_keys ADD CONSTRAINT fk_api_keys_project
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE NOT VALID;

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,                -- random; the JWT `sid` claim
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_info  VARCHAR(255),                    -- User-Agent at login, cut to 255
    client_addr  VARCHAR(64),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT now(), -- last refresh
    expires_at   TIMESTAMPTZ NOT NULL,            -- end of the current refresh token's life
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX idx_sessions_account_active ON sessions (account_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    token_digest CHAR(64) PRIMARY KEY,            -- hex HMAC-SHA256(jwt secret, token)
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ                      -- set when rotated; presenting it again = reuse
);
CREATE INDEX idx_refresh_tokens_session ON refresh_tokens (session_id);
