export function Projects() {
  return (
    <section class="page">
      <h1>Projects</h1>
    </section>
  );
}
