// Live tail controls: the toggle (aria-pressed; the shell's `t` shortcut calls the same toggle),
// pause/resume, the stream's state and the "N dropped" marker (server rate bound + client buffer).
import type { TailSnapshot } from "../../stream/tail";

interface Props {
  on: boolean;
  paused: boolean;
  snapshot: TailSnapshot | null;
  onToggle: () => void;
  onPause: () => void;
  onClear: () => void;
}

const STATUS: Record<string, string> = {
  connecting: "Connecting…",
  live: "Live",
  paused: "Paused",
  reconnecting: "Reconnecting…",
  error: "Stopped",
  closed: "Off",
};

export function TailBar({ on, paused, snapshot, onToggle, onPause, onClear }: Props) {
  return (
    <div class="tail-bar" data-testid="tail-bar">
      <button
        type="button"
        class={"tail-toggle" + (on ? " active" : "")}
        aria-label="Live tail"
        aria-pressed={on}
        aria-keyshortcuts="t"
        title="Live tail (t)"
        onClick={onToggle}
      >
        <span class="tail-dot" aria-hidden="true" />
        Live tail
      </button>
      {on && (
        <>
          <button type="button" aria-label={paused ? "Resume live tail" : "Pause live tail"} onClick={onPause}>
            {paused ? "Resume" : "Pause"}
          </button>
          <span class={`tail-status tail-${snapshot?.status ?? "connecting"}`} role="status" data-testid="tail-status">
            {STATUS[snapshot?.status ?? "connecting"]}
            {snapshot && snapshot.pending > 0 ? ` · ${snapshot.pending} new` : ""}
            {snapshot ? ` · ${snapshot.logs.length} streamed` : ""}
          </span>
          {snapshot && snapshot.dropped > 0 && (
            <span class="tail-dropped" data-testid="tail-dropped" title="Logs skipped because the stream or this page could not keep up">
              {snapshot.dropped.toLocaleString()} dropped
            </span>
          )}
          <button type="button" class="link" onClick={onClear}>
            Clear
          </button>
          {snapshot?.error && (
            <span class="error" role="alert">
              {snapshot.error}
            </span>
          )}
        </>
      )}
    </div>
  );
}
