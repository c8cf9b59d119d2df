import { Link } from "../components/Link";

export function NotFound() {
  return (
    <section class="page">
      <h1>Page not found</h1>
      <p>
        Nothing lives at <code>{location.pathname}</code>. <Link to="/logs">Go to the logs</Link>.
      </p>
    </section>
  );
}
