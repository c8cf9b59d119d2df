export function Errors() {
  return (
    <section class="page">
      <h1>Errors</h1>
    </section>
  );
}
