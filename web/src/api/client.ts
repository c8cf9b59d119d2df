// The one HTTP client of the dashboard. Every request to ledgerd goes through `request`.
//
// - The access token lives in memory only (never in storage). The refresh token is an httpOnly
//   cookie scoped to /api/v1/accounts, so a page load starts signed out in memory and
//   `restoreSession()` asks for a new access token with that cookie.
// - A 401 on an authenticated request triggers one silent refresh (shared by concurrent callers)
//   and one retry; if that fails the session is over and `onSessionExpired` listeners run.
// - Failures are values (`Result`), never exceptions: 429 carries Retry-After seconds, a network
//   failure is `unreachable`.

import type { Facets, Histogram, LogEntry, LogPage } from "./types";

export type ApiError =
  | { kind: "unreachable"; status: 0; detail: string }
  | { kind: "unauthorized"; status: 401; detail: string }
  | { kind: "rate_limited"; status: 429; detail: string; retryAfter: number }
  | { kind: "validation"; status: 422; detail: string; field: string | null }
  | { kind: "http"; status: number; detail: string };

export type Result<T> = { ok: true; value: T; status: number } | { ok: false; error: ApiError };

export type Query = Record<string, string | number | boolean | null | undefined | string[]>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Send the access token and refresh on 401 (default true). */
  auth?: boolean;
  signal?: AbortSignal;
}

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  account_id: number;
  email: string;
  name?: string;
  expires_in: number;
}

export interface SessionInfo {
  accountId: number;
  email: string;
}

// ---- session (the only module-level mutable state of the app) ----

let accessToken: string | null = null;
let session: SessionInfo | null = null;
let refreshing: Promise<boolean> | null = null;
const sessionListeners = new Set<(s: SessionInfo | null, expired: boolean) => void>();
const reachabilityListeners = new Set<(reachable: boolean) => void>();
let lastReachable = true;

/** The current access token, for transports that cannot set headers (EventSource `?token=`). */
export function currentAccessToken(): string | null {
  return accessToken;
}

export function currentSession(): SessionInfo | null {
  return session;
}

/** Runs `fn` when the session starts or ends (`expired` = ended without the user signing out). */
export function onSessionChange(fn: (s: SessionInfo | null, expired: boolean) => void): () => void {
  sessionListeners.add(fn);
  return () => sessionListeners.delete(fn);
}

/** Runs `fn` when the server becomes unreachable or reachable again. */
export function onReachabilityChange(fn: (reachable: boolean) => void): () => void {
  reachabilityListeners.add(fn);
  return () => reachabilityListeners.delete(fn);
}

function setReachable(reachable: boolean): void {
  if (reachable === lastReachable) return;
  lastReachable = reachable;
  for (const fn of reachabilityListeners) fn(reachable);
}

function setSession(tokens: TokenResponse | null, expired = false): void {
  const before = session;
  accessToken = tokens ? tokens.access_token : null;
  session = tokens ? { accountId: tokens.account_id, email: tokens.email } : null;
  const changed = (before === null) !== (session === null) || before?.accountId !== session?.accountId;
  if (changed) for (const fn of sessionListeners) fn(session, expired);
}

// ---- helpers ----

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      params.set(k, Array.isArray(v) ? v.join(",") : String(v));
    }
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The human text of an error body: `{"detail": "..."}` or FastAPI's 422 list. */
function describe(body: unknown, status: number): { detail: string; field: string | null } {
  if (isRecord(body)) {
    const d = body.detail;
    if (typeof d === "string") return { detail: d, field: null };
    if (Array.isArray(d) && d.length > 0 && isRecord(d[0])) {
      const first = d[0];
      const msg = typeof first.msg === "string" ? first.msg : "Invalid input";
      const loc = Array.isArray(first.loc) ? first.loc : [];
      const last = loc.length > 0 ? loc[loc.length - 1] : null;
      const field = typeof last === "string" ? last : null;
      return { detail: field ? `${field}: ${msg.replace(/^Value error, /, "")}` : msg, field };
    }
  }
  return { detail: `Request failed (HTTP ${status})`, field: null };
}

function retryAfterSeconds(res: Response): number {
  const h = res.headers.get("Retry-After");
  if (!h) return 60;
  const n = Number(h);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const date = Date.parse(h);
  return Number.isNaN(date) ? 60 : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function send(method: string, url: string, opts: RequestOptions): Promise<Response | null> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.auth !== false && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  try {
    const res = await fetch(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: "same-origin",
      signal: opts.signal,
    });
    setReachable(res.status !== 502 && res.status !== 504);
    return res;
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    setReachable(false);
    return null;
  }
}

async function toResult<T>(res: Response): Promise<Result<T>> {
  const text = await res.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = text;
    }
  }
  if (res.ok) return { ok: true, value: body as T, status: res.status };
  const { detail, field } = describe(body, res.status);
  switch (res.status) {
    case 401:
      return { ok: false, error: { kind: "unauthorized", status: 401, detail } };
    case 429:
      return {
        ok: false,
        error: { kind: "rate_limited", status: 429, detail, retryAfter: retryAfterSeconds(res) },
      };
    case 422:
      return { ok: false, error: { kind: "validation", status: 422, detail, field } };
    default:
      return { ok: false, error: { kind: "http", status: res.status, detail } };
  }
}

const UNREACHABLE: ApiError = {
  kind: "unreachable",
  status: 0,
  detail: "Server unreachable. Check your connection; retrying when you act again.",
};

/** One refresh at a time; concurrent 401s wait for the same one. */
function refreshOnce(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      const res = await send("POST", "/api/v1/accounts/refresh", { auth: false });
      if (!res) return false;
      const r = await toResult<TokenResponse>(res);
      if (r.ok) {
        setSession(r.value);
        return true;
      }
      if (r.error.kind === "unauthorized") setSession(null, session !== null);
      return false;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** Sends one API request. Never throws except for an aborted `signal`. */
export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<Result<T>> {
  const url = buildUrl(path, opts.query);
  const authed = opts.auth !== false;
  if (authed && !accessToken && session === null) {
    // A page load: try the refresh cookie before the first authenticated call.
    await refreshOnce();
  }
  let res = await send(method, url, opts);
  if (!res) return { ok: false, error: UNREACHABLE };
  if (res.status === 401 && authed) {
    const refreshed = await refreshOnce();
    if (!refreshed) {
      if (session !== null) setSession(null, true);
      return toResult<T>(res);
    }
    res = await send(method, url, opts);
    if (!res) return { ok: false, error: UNREACHABLE };
    if (res.status === 401) setSession(null, true);
  }
  return toResult<T>(res);
}

export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>("GET", path, { query, signal }),
  post: <T>(path: string, body?: unknown, query?: Query) => request<T>("POST", path, { body, query }),
  patch: <T>(path: string, body?: unknown, query?: Query) => request<T>("PATCH", path, { body, query }),
  put: <T>(path: string, body?: unknown, query?: Query) => request<T>("PUT", path, { body, query }),
  del: <T>(path: string, query?: Query) => request<T>("DELETE", path, { query }),
};

/** Asks `/health` whether ledgerd answers again (updates the reachability listeners). */
export async function pingServer(): Promise<boolean> {
  const r = await request<unknown>("GET", "/health", { auth: false });
  return r.ok;
}

// ---- account flows ----

/** On page load: turns the refresh cookie into a session, if there is one. */
export async function restoreSession(): Promise<boolean> {
  if (session) return true;
  return refreshOnce();
}

export async function signIn(email: string, password: string): Promise<Result<TokenResponse>> {
  const r = await request<TokenResponse>("POST", "/api/v1/accounts/login", {
    body: { email, password },
    auth: false,
  });
  // An account with two-factor sign-in gets a challenge, not a session (twoFactorChallenge()).
  if (r.ok && r.value.access_token) setSession(r.value);
  return r;
}

export async function register(name: string, email: string, password: string): Promise<Result<TokenResponse>> {
  const r = await request<TokenResponse>("POST", "/api/v1/accounts/register", {
    body: { name, email, password },
    auth: false,
  });
  if (r.ok) setSession(r.value);
  return r;
}

export async function signOut(): Promise<void> {
  if (accessToken) await request<null>("POST", "/api/v1/accounts/logout");
  setSession(null, false);
}

/** Ends the session locally after the server revoked it (e.g. "revoke all"). */
export function forgetSession(): void {
  setSession(null, false);
}

/** A one-line message for an error value, for banners and inline errors. */
export function errorText(e: ApiError): string {
  if (e.kind === "rate_limited") {
    return `Too many requests: ${e.detail.replace(/\.$/, "")}. Try again in ${e.retryAfter} s.`;
  }
  return e.detail;
}

// ---- logs explorer: list, search, one log, histogram, facets (docs/api.md "Logs and search") ----
// Shapes in types.ts (LogEntry, LogPage, Histogram, Facets).

/** Filters shared by the explorer's requests: project_id, start_time, end_time, level, log_type. */
export type LogFilters = Record<string, string>;

/** A page of logs, newest first: `/logs/search?q=` when `q` is set, else `/logs`. */
export function fetchLogPage(
  filters: LogFilters,
  q: string,
  limit: number,
  cursor: string | null,
  signal?: AbortSignal,
): Promise<Result<LogPage>> {
  const query: Query = { ...filters, limit, cursor };
  if (q) {
    // The search endpoint takes no level/log_type parameters: the caller folds them into q.
    delete query.level;
    delete query.log_type;
    return api.get<LogPage>("/api/v1/logs/search", { ...query, q }, signal);
  }
  return api.get<LogPage>("/api/v1/logs", query, signal);
}

export function fetchLog(projectId: number, id: number, signal?: AbortSignal): Promise<Result<LogEntry>> {
  return api.get<LogEntry>(`/api/v1/logs/${id}`, { project_id: projectId }, signal);
}

export function fetchHistogram(
  filters: LogFilters,
  q: string,
  buckets: number,
  signal?: AbortSignal,
): Promise<Result<Histogram>> {
  return api.get<Histogram>("/api/v1/logs/histogram", { ...filters, q, buckets }, signal);
}

export function fetchFacets(filters: LogFilters, q: string, signal?: AbortSignal): Promise<Result<Facets>> {
  return api.get<Facets>("/api/v1/logs/facets", { ...filters, q }, signal);
}

// ---- end of logs explorer ----

// ---- alerts, monitors, inbox and two-factor sign-in (docs/api.md "Two-factor sign-in",
// "Connectors", "Notification inbox", "Alerts", "Monitors") ----

export interface TwoFactorStatus {
  enabled: boolean;
  backup_codes_remaining: number;
}
export interface TwoFactorSetup {
  secret: string;
  provisioning_uri: string;
}
export interface TwoFactorVerified {
  success: boolean;
  backup_codes: string[];
  message: string;
}
/** A login answer for an account with two-factor sign-in: no session yet. */
export interface TwoFactorChallenge {
  requires_2fa: true;
  totp_session_token: string;
}

export const twoFactor = {
  status: () => api.get<TwoFactorStatus>("/api/v1/accounts/2fa/status"),
  setup: () => api.post<TwoFactorSetup>("/api/v1/accounts/2fa/setup"),
  verify: (code: string) => api.post<TwoFactorVerified>("/api/v1/accounts/2fa/verify", { code }),
  disable: (password: string) => api.post<{ success: boolean; message: string }>("/api/v1/accounts/2fa/disable", { password }),
};

/** `signIn` answered `requires_2fa`: the challenge, else null. */
export function twoFactorChallenge(t: TokenResponse): TwoFactorChallenge | null {
  const o = t as unknown as Record<string, unknown>;
  return o.requires_2fa === true && typeof o.totp_session_token === "string"
    ? { requires_2fa: true, totp_session_token: o.totp_session_token }
    : null;
}

/** Second step of a sign-in: a TOTP or backup code for the challenge's token. */
export async function signInSecondFactor(token: string, code: string): Promise<Result<TokenResponse>> {
  const r = await request<TokenResponse>("POST", "/api/v1/accounts/2fa/login", {
    body: { totp_session_token: token, code },
    auth: false,
  });
  if (r.ok) setSession(r.value);
  return r;
}

export interface InboxNotification {
  id: number;
  project_id: number | null;
  kind: string;
  title: string;
  data: Record<string, unknown> | null;
  read: boolean;
  read_at: string | null;
  created_at: string;
}
export interface InboxPage {
  notifications: InboxNotification[];
  total: number;
  unread: number;
}

export const inbox = {
  list: (limit = 50, offset = 0, unreadOnly = false) =>
    api.get<InboxPage>("/api/v1/notifications", { limit, offset, unread_only: unreadOnly ? "true" : null }),
  unreadCount: () => api.get<{ unread_count: number }>("/api/v1/notifications/unread-count"),
  read: (id: number) => api.post<InboxNotification>(`/api/v1/notifications/${id}/read`),
  readAll: () => api.post<{ success: boolean; updated: number }>("/api/v1/notifications/read-all"),
  remove: (id: number) => api.del<null>(`/api/v1/notifications/${id}`),
};

export type ConnectorKind = "in_app" | "webhook" | "email";
export interface Connector {
  id: number;
  name: string;
  kind: ConnectorKind;
  enabled: boolean;
  config: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}
export interface ConnectorInput {
  name: string;
  kind?: ConnectorKind;
  enabled?: boolean;
  config?: Record<string, unknown>;
}
export interface ConnectorTestResult {
  success: boolean;
  delivered: number;
  failed: number;
  skipped: number;
  status_code: number | null;
  error: string | null;
}

export const connectors = {
  list: () => api.get<{ connectors: Connector[]; total: number }>("/api/v1/connectors"),
  create: (c: ConnectorInput) => api.post<Connector>("/api/v1/connectors", c),
  update: (id: number, c: Partial<ConnectorInput>) => api.patch<Connector>(`/api/v1/connectors/${id}`, c),
  remove: (id: number) => api.del<null>(`/api/v1/connectors/${id}`),
  test: (id: number) => api.post<ConnectorTestResult>(`/api/v1/connectors/${id}/test`),
};

export type AlertMetric = "error_rate" | "error_count" | "log_volume" | "p50_latency" | "p95_latency" | "p99_latency" | "custom";
export type AlertAggregation = "avg" | "min" | "max" | "sum" | "last" | "count";
export type Comparator = "gt" | "gte" | "lt" | "lte";
export interface AlertRuleInput {
  project_id?: number;
  name: string;
  metric: AlertMetric;
  comparator: Comparator;
  threshold: number;
  window_s: number;
  cooldown_s: number;
  filter: string | null;
  connector_ids: number[];
  enabled?: boolean;
  /** metric "custom" only: the OTLP metric and how its points in the window are reduced */
  metric_name?: string | null;
  aggregation?: AlertAggregation | null;
}
export interface AlertRule extends Required<AlertRuleInput> {
  id: number;
  unit: "percent" | "count" | "ms" | null;
  state: "ok" | "firing";
  last_value: number | null;
  last_evaluated_at: string | null;
  last_fired_at: string | null;
  snoozed_until: string | null;
  created_at: string;
  updated_at: string;
}
export interface AlertEvent {
  id: number;
  rule_id: number;
  rule_name: string;
  project_id: number;
  metric: AlertMetric;
  comparator: Comparator;
  threshold: number;
  value: number;
  status: "firing" | "resolved";
  fired_at: string;
  resolved_at: string | null;
  resolved_value: number | null;
  acked_at: string | null;
  acked_by: number | null;
  snoozed_until: string | null;
}
export interface MaintenanceWindow {
  id: number;
  project_id: number;
  starts_at: string;
  ends_at: string;
  reason: string | null;
  active: boolean;
  created_at: string;
}

export const alerts = {
  rules: (projectId: number) => api.get<{ rules: AlertRule[]; total: number }>("/api/v1/alerts/rules", { project_id: projectId }),
  create: (r: AlertRuleInput) => api.post<AlertRule>("/api/v1/alerts/rules", r),
  update: (id: number, r: Partial<AlertRuleInput>) => api.patch<AlertRule>(`/api/v1/alerts/rules/${id}`, r),
  remove: (id: number) => api.del<null>(`/api/v1/alerts/rules/${id}`),
  setEnabled: (id: number, on: boolean) => api.post<AlertRule>(`/api/v1/alerts/rules/${id}/${on ? "enable" : "disable"}`),
  history: (projectId: number, limit = 50) =>
    api.get<{ project_id: number; total: number; events: AlertEvent[] }>("/api/v1/alerts/history", { project_id: projectId, limit }),
  ack: (eventId: number) => api.post<AlertEvent>(`/api/v1/alerts/history/${eventId}/ack`),
  snooze: (eventId: number, minutes: number) => api.post<AlertEvent>(`/api/v1/alerts/history/${eventId}/snooze`, { minutes }),
  windows: (projectId: number) =>
    api.get<{ windows: MaintenanceWindow[]; total: number }>("/api/v1/maintenance-windows", { project_id: projectId }),
  createWindow: (w: { project_id: number; starts_at: string; ends_at: string; reason?: string }) =>
    api.post<MaintenanceWindow>("/api/v1/maintenance-windows", w),
  removeWindow: (id: number) => api.del<null>(`/api/v1/maintenance-windows/${id}`),
};

export type MonitorKind = "http" | "heartbeat";
export interface MonitorInput {
  project_id: number;
  kind: MonitorKind;
  name: string;
  target_url?: string;
  interval_s?: number;
  timeout_s?: number;
  expected_status?: number;
  grace_s?: number;
  connector_ids?: number[];
  enabled?: boolean;
}
export interface Monitor extends Required<Omit<MonitorInput, "target_url">> {
  id: number;
  target_url: string | null;
  token: string;
  ping_url: string;
  state: "unknown" | "up" | "down";
  state_changed_at: string | null;
  last_ping_at: string | null;
  last_check_at: string | null;
  last_latency_ms: number | null;
  last_status_code: number | null;
  last_error: string | null;
  checks_total: number;
  uptime_percent: number | null;
  created_at: string;
  updated_at: string;
}
export interface MonitorCheck {
  checked_at: string;
  ok: boolean;
  latency_ms: number | null;
  status_code: number | null;
  error: string | null;
}
export interface MonitorChecks {
  monitor_id: number;
  checks: MonitorCheck[];
  total: number;
  uptime_percent: number | null;
  avg_latency_ms: number | null;
}

export const monitors = {
  list: (projectId: number) => api.get<Monitor[]>("/api/v1/monitors", { project_id: projectId }),
  create: (m: MonitorInput) => api.post<Monitor>("/api/v1/monitors", m),
  remove: (id: number) => api.del<null>(`/api/v1/monitors/${id}`),
  checks: (id: number, limit = 50) => api.get<MonitorChecks>(`/api/v1/monitors/${id}/checks`, { limit }),
};

// ---- end of alerts, monitors, inbox and two-factor sign-in ----
