// Account settings: two-factor sign-in (status; setup with a QR code drawn here and the secret as
// text; verify with a code, which shows the backup codes once; disable with the password).
import { useState } from "preact/hooks";
import { twoFactor, currentSession, type ApiError, type TwoFactorSetup } from "../api/client";
import { CopyButton } from "../components/CopyButton";
import { ErrorLine, Field } from "../components/Form";
import { QrCode } from "../components/QrCode";
import { useApi } from "../components/useApi";

export function Account() {
  const status = useApi(() => twoFactor.status(), []);
  const [setup, setSetup] = useState<TwoFactorSetup | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const enabled = status.data?.enabled === true;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Account</h1>
      </div>
      <p class="muted">Signed in as {currentSession()?.email}.</p>
      <section class="card" aria-labelledby="tfa-h">
        <h2 id="tfa-h">Two-factor sign-in</h2>
        <ErrorLine error={error ?? status.error} />
        {status.data ? (
          <p data-testid="tfa-status">
            {enabled ? (
              <>
                <span class="badge badge-active">On</span> Signing in asks for a code from your authenticator app.{" "}
                {status.data.backup_codes_remaining} backup codes left.
              </>
            ) : (
              <>
                <span class="badge">Off</span> Signing in needs only your password.
              </>
            )}
          </p>
        ) : null}
        {codes ? (
          <div class="notice" role="status" data-testid="backup-codes">
            <p>
              <strong>Two-factor sign-in is on.</strong> Keep these backup codes somewhere safe: each signs you in once if you lose
              your phone. They are not shown again.
            </p>
            <ul class="backup-codes">
              {codes.map((c) => (
                <li key={c}>{c}</li>
              ))}
            </ul>
            <CopyButton text={codes.join("\n")} label="Copy backup codes" />{" "}
            <button type="button" onClick={() => setCodes(null)}>
              I saved them
            </button>
          </div>
        ) : null}
        {status.data && !enabled && !setup ? (
          <button
            type="button"
            class="primary"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              const r = await twoFactor.setup();
              setBusy(false);
              if (!r.ok) return setError(r.error);
              setError(null);
              setSetup(r.value);
            }}
          >
            Set up two-factor sign-in
          </button>
        ) : null}
        {setup && !enabled ? (
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const f = new FormData(e.currentTarget as HTMLFormElement);
              setBusy(true);
              const r = await twoFactor.verify(String(f.get("code") ?? "").trim());
              setBusy(false);
              if (!r.ok) return setError(r.error);
              setError(null);
              setSetup(null);
              setCodes(r.value.backup_codes);
              status.reload();
            }}
          >
            <p>Scan this code with an authenticator app, or type the secret into it, then enter the 6-digit code it shows.</p>
            <QrCode text={setup.provisioning_uri} label="QR code of the two-factor secret" />
            <p>
              Secret: <code class="secret" data-testid="tfa-secret">{setup.secret}</code> <CopyButton text={setup.secret} label="Copy secret" />
            </p>
            <Field label="Code from the app" name="code" autoComplete="one-time-code" inputMode="numeric" pattern="[0-9]{6}" required />
            <button type="submit" class="primary" disabled={busy}>
              Turn on
            </button>{" "}
            <button type="button" onClick={() => setSetup(null)}>
              Cancel
            </button>
          </form>
        ) : null}
        {enabled ? (
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const form = e.currentTarget as HTMLFormElement;
              const f = new FormData(form);
              setBusy(true);
              const r = await twoFactor.disable(String(f.get("password") ?? ""));
              setBusy(false);
              if (!r.ok) return setError(r.error);
              setError(null);
              setCodes(null);
              form.reset();
              status.reload();
            }}
          >
            <Field label="Password" name="password" type="password" autoComplete="current-password" required />
            <button type="submit" class="danger" disabled={busy}>
              Turn off two-factor sign-in
            </button>
          </form>
        ) : null}
      </section>
    </section>
  );
}
