// "/" sends signed-in users to the logs (see app.tsx); this renders only for a moment.
export function Home() {
  return <p class="muted">Loading…</p>;
}
