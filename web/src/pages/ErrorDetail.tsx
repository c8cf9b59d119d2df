export function ErrorDetail() {
  return (
    <section class="page">
      <h1>ErrorDetail</h1>
    </section>
  );
}
