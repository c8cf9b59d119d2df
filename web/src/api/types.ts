// Shapes of ledgerd's JSON answers the dashboard reads (docs/api.md).

export interface Project {
  project_id: number;
  name: string;
  slug: string;
  environment: string;
  retention_days: number;
  daily_quota: number;
  available_routes: string[];
}

export interface ProjectList {
  projects: Project[];
  total: number;
}

export interface Quota {
  project_id: number;
  project_name: string;
  project_slug: string;
  environment: string;
  daily_quota: number;
  daily_usage: number;
  quota_remaining: number;
  quota_reset_at: string;
  retention_days: number;
}

export interface ApiKey {
  key_id: number;
  project_id: number;
  name: string;
  key_prefix: string;
  status: "active" | "revoked";
  created_at: string;
  last_used_at: string | null;
}

export interface ApiKeyList {
  api_keys: ApiKey[];
  total: number;
}

export interface CreatedKey {
  key_id: number;
  full_key: string;
  key_prefix: string;
  warning: string;
}

export interface Session {
  id: string;
  device_info: string | null;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  is_current: boolean;
}

export interface SessionList {
  sessions: Session[];
  total: number;
}

export interface Account {
  account_id: number;
  email: string;
  name: string;
  created_at: string;
}

export type Level = "debug" | "info" | "warning" | "error" | "critical";
export const LEVELS: Level[] = ["debug", "info", "warning", "error", "critical"];
export const LOG_TYPES = ["console", "logger", "exception", "database", "endpoint", "custom"] as const;

export interface LogEntry {
  id: number;
  project_id: number;
  timestamp: string;
  ingested_at: string | null;
  level: Level;
  log_type: string;
  importance: string | null;
  environment: string | null;
  release: string | null;
  message: string | null;
  error_type: string | null;
  error_message: string | null;
  stack_trace: string | null;
  attributes: Record<string, unknown> | null;
  sdk_version: string | null;
  platform: string | null;
  platform_version: string | null;
  processing_time_ms: number | null;
  error_fingerprint: string | null;
}

export interface LogPage {
  project_id: number;
  logs: LogEntry[];
  total: number | null;
  has_more: boolean;
  next_cursor: string | null;
}

export interface HistogramBucket {
  timestamp: string;
  debug: number;
  info: number;
  warning: number;
  error: number;
  critical: number;
}

export interface Histogram {
  project_id: number;
  start_time: string;
  end_time: string;
  interval_s: number;
  buckets: HistogramBucket[];
}

export interface Facets {
  project_id: number;
  levels: Record<string, number>;
  log_types: Record<string, number>;
}

export type GroupStatus = "unresolved" | "resolved" | "ignored" | "muted";
export const GROUP_STATUSES: GroupStatus[] = ["unresolved", "resolved", "ignored", "muted"];

export interface ErrorGroup {
  id: number;
  project_id: number;
  fingerprint: string;
  error_type: string | null;
  error_message: string | null;
  first_seen: string;
  last_seen: string;
  occurrence_count: number;
  status: GroupStatus;
  assigned_to: string | null;
  sample_log_id: number | null;
  resolved_at: string | null;
  resolved_in_release: string | null;
  is_regression: boolean;
  regressed_at: string | null;
  sparkline: number[];
}

export interface ErrorGroupList {
  project_id: number;
  groups: ErrorGroup[];
  total: number;
  has_more: boolean;
  next_cursor: string | null;
}

export interface ErrorGroupDetail extends ErrorGroup {
  sample_stack_trace: string | null;
  sample_log: LogEntry | null;
  hourly: { timestamp: string; count: number }[];
}

export interface AggregatedRow {
  date: string;
  hour: number | null;
  endpoint_method: string | null;
  endpoint_path: string | null;
  log_level: string | null;
  log_type: string | null;
  log_count: number;
  error_count: number;
  avg_duration_ms: number | null;
  min_duration_ms: number | null;
  max_duration_ms: number | null;
  p95_duration_ms: number | null;
  p99_duration_ms: number | null;
  /** Missing from servers older than the median; null for hours aggregated before it. */
  p50_duration_ms?: number | null;
}

export interface Aggregated {
  project_id: number;
  metric_type: string;
  granularity: "hourly" | "daily" | "weekly" | "monthly";
  start_date: string;
  end_date: string;
  data: AggregatedRow[];
}

export interface ErrorRate {
  project_id: number;
  interval: string;
  data: { timestamp: string; error_count: number; critical_count: number }[];
}

export interface LogVolume {
  project_id: number;
  interval: string;
  data: ({ timestamp: string } & Record<Level, number>)[];
}

export interface TopErrors {
  project_id: number;
  errors: {
    fingerprint: string;
    error_type: string | null;
    error_message: string | null;
    occurrence_count: number;
    first_seen: string;
    last_seen: string;
    status: string | null;
  }[];
}

export interface ProjectPrefs {
  enabled: boolean;
  levels: string[];
  types: string[];
}

export interface NotificationPrefs {
  enabled: boolean;
  projects: Record<string, ProjectPrefs>;
}
