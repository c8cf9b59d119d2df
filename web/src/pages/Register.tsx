import { useState } from "preact/hooks";
import { register, type ApiError } from "../api/client";
import { ErrorLine, Field } from "../components/Form";
import { Link } from "../components/Link";

export function Register() {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section class="auth-card">
      <h1>Create your Ledger account</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          setBusy(true);
          const r = await register(
            String(f.get("name") ?? ""),
            String(f.get("email") ?? ""),
            String(f.get("password") ?? ""),
          );
          setBusy(false);
          if (!r.ok) setError(r.error);
        }}
      >
        <Field label="Name" name="name" autoComplete="name" required maxLength={255} />
        <Field label="Email" name="email" type="email" autoComplete="username" required />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          minLength={8}
          maxLength={64}
          hint="8–64 characters with an upper-case letter, a lower-case letter and a digit."
        />
        <ErrorLine error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/signin">Sign in</Link>
      </p>
    </section>
  );
}
