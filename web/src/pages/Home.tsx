export function Home() {
  return (
    <section class="page">
      <h1>Home</h1>
    </section>
  );
}
