import { useState } from "preact/hooks";
import { signIn, signInSecondFactor, twoFactorChallenge, type ApiError } from "../api/client";
import { ErrorLine, Field } from "../components/Form";
import { Link } from "../components/Link";
import { useParam } from "../state/url";

/** The second step for an account with two-factor sign-in: a code from the app or a backup code. */
function SecondFactor({ token, onRestart }: { token: string; onRestart: () => void }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        setBusy(true);
        const r = await signInSecondFactor(token, String(f.get("code") ?? "").trim());
        setBusy(false);
        if (!r.ok) {
          // A dropped or expired challenge cannot be retried: sign in again.
          if (r.error.status === 401 && /session/i.test(r.error.detail)) onRestart();
          setError(r.error);
        }
      }}
    >
      <p>Enter the 6-digit code from your authenticator app, or one of your backup codes.</p>
      <Field label="Two-factor code" name="code" autoComplete="one-time-code" inputMode="numeric" required autoFocus />
      <ErrorLine error={error} />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? "Checking…" : "Verify"}
      </button>{" "}
      <button type="button" class="link" onClick={onRestart}>
        Start over
      </button>
    </form>
  );
}

export function SignIn() {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [challenge, setChallenge] = useState<string | null>(null);
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
      {challenge ? (
        <SecondFactor token={challenge} onRestart={() => setChallenge(null)} />
      ) : (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            const f = new FormData(e.currentTarget as HTMLFormElement);
            setBusy(true);
            const r = await signIn(String(f.get("email") ?? ""), String(f.get("password") ?? ""));
            setBusy(false);
            if (!r.ok) return setError(r.error);
            const c = twoFactorChallenge(r.value);
            if (c) {
              setError(null);
              setChallenge(c.totp_session_token);
            }
          }}
        >
          <Field label="Email" name="email" type="email" autoComplete="username" required />
          <Field label="Password" name="password" type="password" autoComplete="current-password" required minLength={8} />
          <ErrorLine error={error} />
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
      )}
      <p>
        New here? <Link to="/register">Create an account</Link>
      </p>
    </section>
  );
}
