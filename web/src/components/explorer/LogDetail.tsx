// Every field of one log: the detail panel of the selected row (or of a shared link's log=<id>).
// Attributes as formatted JSON, the stack trace monospace with its line breaks; copy-link puts the
// explorer URL with log=<id> on the clipboard.
import { useState } from 'preact/hooks';
import type { LogEntry } from "../../api/types";
import { formatTime } from './format';

interface Props {
  log: LogEntry | null;
  loading: boolean;
  error: string | null;
  link: string;
  onClose: () => void;
}

const FIELDS: Array<[keyof LogEntry, string]> = [
  ['id', 'ID'],
  ['timestamp', 'Timestamp'],
  ['ingested_at', 'Ingested at'],
  ['level', 'Level'],
  ['log_type', 'Type'],
  ['importance', 'Importance'],
  ['environment', 'Environment'],
  ['release', 'Release'],
  ['error_type', 'Error type'],
  ['error_message', 'Error message'],
  ['error_fingerprint', 'Fingerprint'],
  ['sdk_version', 'SDK version'],
  ['platform', 'Platform'],
  ['platform_version', 'Platform version'],
  ['processing_time_ms', 'Processing time (ms)'],
  ['project_id', 'Project'],
];

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

export function LogDetail({ log, loading, error, link, onClose }: Props) {
  const [copied, setCopied] = useState(false);
  return (
    <section class="log-detail" data-testid="log-detail" aria-label="Log details">
      <header>
        <h2>{log ? `Log ${log.id}` : 'Log'}</h2>
        <button
          type="button"
         
          disabled={!log}
          onClick={async () => {
            setCopied(await copy(link));
            setTimeout(() => setCopied(false), 2000);
          }}
        >
          {copied ? 'Link copied' : 'Copy link'}
        </button>
        <button type="button" aria-label="Close details" onClick={onClose}>
          ×
        </button>
      </header>
      {loading && <p role="status">Loading…</p>}
      {error && <p role="alert" class="error">{error}</p>}
      {log && (
        <>
          <p class="log-detail-message">{log.message}</p>
          <dl class="log-fields">
            {FIELDS.map(([k, label]) => {
              const v = log[k];
              if (v === null || v === undefined || v === '') return null;
              return (
                <div key={k}>
                  <dt>{label}</dt>
                  <dd>{k === 'timestamp' || k === 'ingested_at' ? `${formatTime(String(v))} (${v})` : String(v)}</dd>
                </div>
              );
            })}
          </dl>
          {log.stack_trace && (
            <>
              <h3>Stack trace</h3>
              <pre class="stack-trace" data-testid="stack-trace">{log.stack_trace}</pre>
            </>
          )}
          <h3>Attributes</h3>
          {log.attributes ? (
            <pre class="attributes-json" data-testid="attributes-json">{JSON.stringify(log.attributes, null, 2)}</pre>
          ) : (
            <p class="muted">None</p>
          )}
          <p>
            <a href={link}>Permalink</a>
          </p>
        </>
      )}
    </section>
  );
}
