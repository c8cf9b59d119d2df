export function NotFound() {
  return (
    <section class="page">
      <h1>NotFound</h1>
    </section>
  );
}
