export function Metrics() {
  return (
    <section class="page">
      <h1>Metrics</h1>
    </section>
  );
}
