// "Send your first log": curl and Python snippets that post to this server (location.origin)
// with a real key of the project. Without a key it offers to create one.
import { useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import type { CreatedKey } from "../api/types";
import { CopyButton } from "./CopyButton";
import { ErrorLine } from "./Form";

export function curlSnippet(origin: string, key: string): string {
  return [
    `curl -X POST ${origin}/api/v1/ingest/batch \\`,
    `  -H "Authorization: Bearer ${key}" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d "{\\"logs\\": [{\\"timestamp\\": \\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\", \\"level\\": \\"info\\", \\"message\\": \\"Hello from curl\\"}]}"`,
  ].join("\n");
}

export function pythonSnippet(origin: string, key: string): string {
  return [
    "import datetime, json, urllib.request",
    "",
    'log = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),',
    '       "level": "info", "message": "Hello from Python"}',
    "req = urllib.request.Request(",
    `    "${origin}/api/v1/ingest/batch",`,
    '    data=json.dumps({"logs": [log]}).encode(),',
    `    headers={"Authorization": "Bearer ${key}", "Content-Type": "application/json"},`,
    '    method="POST",',
    ")",
    "print(urllib.request.urlopen(req).read().decode())",
  ].join("\n");
}

export function FirstLog({ projectId, apiKey }: { projectId: number; apiKey?: string | null }) {
  const [key, setKey] = useState<string | null>(apiKey ?? null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const shown = apiKey ?? key;
  const origin = location.origin;
  return (
    <section class="card first-log" aria-labelledby="first-log-title" data-testid="first-log">
      <h2 id="first-log-title">Send your first log</h2>
      {shown ? (
        <>
          <p class="muted">This project has no logs yet. Run one of these, then reload this page.</p>
          <div class="snippet">
            <div class="snippet-head">
              <strong>curl</strong>
              <CopyButton text={curlSnippet(origin, shown)} label="Copy curl snippet" />
            </div>
            <pre>{curlSnippet(origin, shown)}</pre>
          </div>
          <div class="snippet">
            <div class="snippet-head">
              <strong>Python</strong>
              <CopyButton text={pythonSnippet(origin, shown)} label="Copy Python snippet" />
            </div>
            <pre>{pythonSnippet(origin, shown)}</pre>
          </div>
        </>
      ) : (
        <>
          <p class="muted">
            This project has no logs yet. Logs are sent with an API key of the project; create one to get ready-to-run
            curl and Python snippets.
          </p>
          <button
            type="button"
            class="primary"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              const name = `first-log-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}`;
              const r = await api.post<CreatedKey>(`/api/v1/projects/${projectId}/api-keys`, { name });
              setBusy(false);
              if (r.ok) setKey(r.value.full_key);
              else setError(r.error);
            }}
          >
            Create a key and show the snippets
          </button>
          <ErrorLine error={error} />
        </>
      )}
    </section>
  );
}
