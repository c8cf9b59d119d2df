-- 0001_init: the v1 auth database (reference-api.md section 7.1), as deployed.
-- Applied by `ledgerd --migrate` inside one transaction; do not add BEGIN/COMMIT here.
-- Later changes go into new files (0002_..., 0003_...), never into this one.

CREATE TABLE accounts (
    id                       BIGSERIAL PRIMARY KEY,
    email                    VARCHAR(255) NOT NULL,
    password_hash            CHAR(60) NOT NULL,            -- bcrypt in v1
    name                     VARCHAR(255) NOT NULL,
    plan                     VARCHAR(20) DEFAULT 'free',    -- free | pro | enterprise
    status                   VARCHAR(20) DEFAULT 'active',  -- active | suspended | deleted
    notification_preferences JSONB NOT NULL DEFAULT '{"enabled": true, "projects": {}}'::jsonb,
    created_at               TIMESTAMPTZ DEFAULT now(),
    updated_at               TIMESTAMPTZ DEFAULT now()
);
CREATE UNIQUE INDEX idx_accounts_email ON accounts (email);
CREATE INDEX idx_accounts_status ON accounts (status) WHERE status = 'active';
CREATE INDEX idx_accounts_notification_prefs ON accounts USING GIN (notification_preferences);

CREATE TABLE projects (
    id               BIGSERIAL PRIMARY KEY,
    account_id       BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name             VARCHAR(255) NOT NULL,
    slug             VARCHAR(255) NOT NULL,
    environment      VARCHAR(20) DEFAULT 'production',
    retention_days   SMALLINT DEFAULT 30,          -- application checks 1..365
    daily_quota      BIGINT DEFAULT 1000000,       -- application checks >= 1000
    available_routes TEXT[] DEFAULT '{}',
    created_at       TIMESTAMPTZ DEFAULT now(),
    updated_at       TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX idx_projects_account_id ON projects (account_id);
CREATE UNIQUE INDEX idx_projects_slug ON projects (slug);

-- No foreign key to projects, as deployed in v1.
CREATE TABLE api_keys (
    id                    BIGSERIAL PRIMARY KEY,
    project_id            BIGINT NOT NULL,
    key_prefix            VARCHAR(20) NOT NULL,
    key_hash              CHAR(60) NOT NULL,
    name                  VARCHAR(255),
    last_used_at          TIMESTAMPTZ,
    status                VARCHAR(20) DEFAULT 'active',   -- active | revoked
    expires_at            TIMESTAMPTZ,
    rate_limit_per_minute INTEGER DEFAULT 1000,           -- application checks >= 10
    rate_limit_per_hour   INTEGER DEFAULT 50000,          -- application checks >= 100
    created_at            TIMESTAMPTZ DEFAULT now()
);
CREATE UNIQUE INDEX idx_api_keys_key_hash ON api_keys (key_hash);
CREATE INDEX idx_api_keys_validation ON api_keys (key_hash, status, expires_at, project_id)
    WHERE status = 'active';
CREATE INDEX idx_api_keys_project_id ON api_keys (project_id);

CREATE TABLE daily_usage (
    id            BIGSERIAL PRIMARY KEY,
    project_id    BIGINT NOT NULL,
    date          DATE NOT NULL,
    logs_ingested BIGINT DEFAULT 0,
    logs_queried  BIGINT DEFAULT 0,
    storage_bytes BIGINT DEFAULT 0,
    created_at    TIMESTAMPTZ DEFAULT now(),
    updated_at    TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT uq_daily_usage_project_date UNIQUE (project_id, date)
);

CREATE TABLE user_dashboards (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    panels     JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT uq_user_dashboards_user UNIQUE (user_id)
);
