import { useState } from "preact/hooks";
import { signIn, type ApiError } from "../api/client";
import { ErrorLine, Field } from "../components/Form";
import { Link } from "../components/Link";
import { useParam } from "../state/url";

export function SignIn() {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const expired = useParam("expired") === "1";
  const signedOut = useParam("signed_out") === "1";
  return (
    <section class="auth-card">
      <h1>Sign in to Ledger</h1>
      {expired ? (
        <p class="notice" role="status">
          Your session expired. Sign in again to continue where you were.
        </p>
      ) : null}
      {signedOut ? (
        <p class="notice" role="status">
          You are signed out.
        </p>
      ) : null}
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          setBusy(true);
          const r = await signIn(String(f.get("email") ?? ""), String(f.get("password") ?? ""));
          setBusy(false);
          if (!r.ok) setError(r.error);
        }}
      >
        <Field label="Email" name="email" type="email" autoComplete="username" required />
        <Field label="Password" name="password" type="password" autoComplete="current-password" required minLength={8} />
        <ErrorLine error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New here? <Link to="/register">Create an account</Link>
      </p>
    </section>
  );
}
