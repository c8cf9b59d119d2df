-- 0004_two_factor: TOTP two-factor sign-in (docs/auth.md "Two-factor sign-in").
--
-- * totp_secret: the account's TOTP secret sealed with AES-256-GCM under the [auth] totp_key_file
--   key (bound to the account id); set by setup, kept while enabled, cleared by disable.
-- * totp_last_step: the highest 30-second step whose code was accepted; a code of that step or an
--   earlier one is refused, so each code works once.
-- * Backup codes are stored as hex HMAC-SHA256 digests under the same key; each is usable once.
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE accounts ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT;

CREATE TABLE totp_backup_codes (
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_digest CHAR(64) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at     TIMESTAMPTZ,
    PRIMARY KEY (account_id, code_digest)
);
