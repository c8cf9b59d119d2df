export function Notifications() {
  return (
    <section class="page">
      <h1>Notifications</h1>
    </section>
  );
}
