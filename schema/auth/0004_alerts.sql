-- 0004_alerts: alerting, monitors and the notification inbox (docs/alerts.md).
--
-- Everything here belongs to an account (connectors, inbox) or to a project (rules, maintenance
-- windows, monitors) and is deleted with it. The evaluator and the monitor checker (analytics
-- role) keep their state in the rule and monitor rows, so any process can take over a tick.

CREATE TABLE connectors (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        VARCHAR(255) NOT NULL,
    kind        VARCHAR(16) NOT NULL CHECK (kind IN ('in_app', 'webhook', 'email')),
    url         TEXT,                  -- webhook target
    secret      TEXT,                  -- webhook signing secret (never returned in full)
    email_to    TEXT,                  -- email: comma-separated recipients
    enabled     BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_connectors_account ON connectors (account_id);

-- One row per delivery attempt of a webhook or email connector.
CREATE TABLE connector_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    connector_id BIGINT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    event_kind   VARCHAR(32) NOT NULL,
    attempt      INT NOT NULL,
    ok           BOOLEAN NOT NULL,
    status_code  INT,
    error        TEXT,
    duration_ms  INT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_connector_deliveries ON connector_deliveries (connector_id, id DESC);

CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    project_id  BIGINT,
    kind        VARCHAR(32) NOT NULL,  -- alert_firing, alert_resolved, monitor_down, monitor_up, test
    title       TEXT NOT NULL,
    data        JSONB NOT NULL DEFAULT '{}',
    read_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_notifications_account ON notifications (account_id, id DESC);
CREATE INDEX idx_notifications_unread ON notifications (account_id) WHERE read_at IS NULL;
CREATE INDEX idx_notifications_created ON notifications (created_at);

CREATE TABLE alert_rules (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             VARCHAR(255) NOT NULL,
    metric           VARCHAR(32) NOT NULL,
    filter           TEXT,             -- search query language, optional
    comparator       VARCHAR(4) NOT NULL,
    threshold        DOUBLE PRECISION NOT NULL,
    window_s         INT NOT NULL,
    cooldown_s       INT NOT NULL,
    connector_ids    BIGINT[] NOT NULL DEFAULT '{}',
    enabled          BOOLEAN NOT NULL DEFAULT true,
    state            VARCHAR(16) NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'firing')),
    last_value       DOUBLE PRECISION,
    last_evaluated_at TIMESTAMPTZ,
    last_fired_at    TIMESTAMPTZ,
    snoozed_until    TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_alert_rules_project ON alert_rules (project_id);

CREATE TABLE alert_events (
    id            BIGSERIAL PRIMARY KEY,
    rule_id       BIGINT NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    project_id    BIGINT NOT NULL,
    metric        VARCHAR(32) NOT NULL,
    comparator    VARCHAR(4) NOT NULL,
    threshold     DOUBLE PRECISION NOT NULL,
    value         DOUBLE PRECISION,
    status        VARCHAR(16) NOT NULL DEFAULT 'firing' CHECK (status IN ('firing', 'resolved')),
    fired_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at   TIMESTAMPTZ,
    resolved_value DOUBLE PRECISION,
    acked_at      TIMESTAMPTZ,
    acked_by      BIGINT,
    snoozed_until TIMESTAMPTZ
);
CREATE INDEX idx_alert_events_project ON alert_events (project_id, id DESC);
CREATE INDEX idx_alert_events_rule_open ON alert_events (rule_id) WHERE status = 'firing';

CREATE TABLE maintenance_windows (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    reason      VARCHAR(255),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX idx_maintenance_windows_project ON maintenance_windows (project_id, ends_at);

CREATE TABLE monitors (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind             VARCHAR(16) NOT NULL CHECK (kind IN ('http', 'heartbeat')),
    name             VARCHAR(255) NOT NULL,
    target_url       TEXT,
    interval_s       INT NOT NULL,
    timeout_s        INT NOT NULL,
    expected_status  INT NOT NULL,
    grace_s          INT NOT NULL,
    token            CHAR(32) NOT NULL UNIQUE,  -- heartbeat ping token
    connector_ids    BIGINT[] NOT NULL DEFAULT '{}',
    enabled          BOOLEAN NOT NULL DEFAULT true,
    state            VARCHAR(16) NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'up', 'down')),
    state_changed_at TIMESTAMPTZ,
    last_ping_at     TIMESTAMPTZ,
    last_check_at    TIMESTAMPTZ,
    last_latency_ms  INT,
    last_status_code INT,
    last_error       TEXT,
    checks_total     BIGINT NOT NULL DEFAULT 0,
    checks_up        BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_monitors_project ON monitors (project_id);

CREATE TABLE monitor_checks (
    id          BIGSERIAL PRIMARY KEY,
    monitor_id  BIGINT NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    checked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    ok          BOOLEAN NOT NULL,
    latency_ms  INT,
    status_code INT,
    error       TEXT
);
CREATE INDEX idx_monitor_checks ON monitor_checks (monitor_id, checked_at DESC);
