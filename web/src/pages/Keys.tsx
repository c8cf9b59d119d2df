export function Keys() {
  return (
    <section class="page">
      <h1>Keys</h1>
    </section>
  );
}
