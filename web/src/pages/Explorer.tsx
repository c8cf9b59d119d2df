// Log explorer (placeholder; the explorer itself is developed separately).
export function Explorer() {
  return (
    <section class="page">
      <h1>Logs</h1>
      <p class="muted">The log explorer is coming.</p>
    </section>
  );
}
