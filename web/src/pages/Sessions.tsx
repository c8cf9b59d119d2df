// The account's signed-in sessions: revoke one, or all (which signs this browser out too).
import { useState } from "preact/hooks";
import { api, forgetSession, type ApiError } from "../api/client";
import type { SessionList } from "../api/types";
import { ErrorLine } from "../components/Form";
import { Time } from "../components/Time";
import { useApi } from "../components/useApi";
import { navigate } from "../state/url";

function device(ua: string | null): string {
  if (!ua) return "Unknown device";
  const browser = /Firefox\/\d+/.exec(ua)?.[0] ?? /Edg\/\d+/.exec(ua)?.[0] ?? /Chrom(e|ium)\/\d+/.exec(ua)?.[0] ?? /Safari\/\d+/.exec(ua)?.[0];
  const os = /Windows|Mac OS X|Android|iPhone|Linux/.exec(ua)?.[0];
  return browser ? `${browser.replace("/", " ")}${os ? ` on ${os}` : ""}` : ua.slice(0, 60);
}

export function Sessions() {
  const list = useApi(() => api.get<SessionList>("/api/v1/accounts/sessions"), []);
  const [error, setError] = useState<ApiError | null>(null);
  return (
    <section class="page">
      <div class="page-head">
        <h1>Sessions</h1>
        <div class="actions">
          <button
            type="button"
            class="danger"
            onClick={async () => {
              if (!confirm("Sign out everywhere, this browser included?")) return;
              const r = await api.post<unknown>("/api/v1/accounts/sessions/revoke-all");
              if (!r.ok) return setError(r.error);
              forgetSession();
              navigate("/signin?signed_out=1");
            }}
          >
            Revoke all sessions
          </button>
        </div>
      </div>
      <p class="muted">Every sign-in is a session. Revoking one signs that browser out at its next request.</p>
      <ErrorLine error={error ?? list.error} />
      {list.data ? (
        <table class="data">
          <caption class="visually-hidden">Active sessions</caption>
          <thead>
            <tr>
              <th>Device</th>
              <th>Signed in</th>
              <th>Last active</th>
              <th>Expires</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.sessions.map((s) => (
              <tr key={s.id} data-testid="session-row">
                <td title={s.device_info ?? undefined}>
                  {device(s.device_info)} {s.is_current ? <span class="badge badge-active">this browser</span> : null}
                </td>
                <td>
                  <Time iso={s.created_at} />
                </td>
                <td>
                  <Time iso={s.last_used_at} />
                </td>
                <td>
                  <Time iso={s.expires_at} />
                </td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    aria-label={s.is_current ? "Revoke this session (sign out)" : `Revoke session ${device(s.device_info)}`}
                    onClick={async () => {
                      const r = await api.post<unknown>(`/api/v1/accounts/sessions/${encodeURIComponent(s.id)}/revoke`);
                      if (!r.ok) return setError(r.error);
                      if (s.is_current) {
                        forgetSession();
                        navigate("/signin?signed_out=1");
                      } else list.reload();
                    }}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : list.loading ? (
        <p class="muted">Loading sessions…</p>
      ) : null}
    </section>
  );
}
