// Small form pieces shared by pages: a labelled field and an inline error line.
import type { ComponentChildren, JSX } from "preact";
import type { ApiError } from "../api/client";
import { errorText } from "../api/client";

type FieldProps = JSX.IntrinsicElements["input"] & {
  label: string;
  hint?: ComponentChildren;
};

export function Field({ label, hint, id, ...input }: FieldProps) {
  const fid = id ?? `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <div class="field">
      <label for={fid}>{label}</label>
      <input id={fid} {...input} />
      {hint ? <small class="muted">{hint}</small> : null}
    </div>
  );
}

export function ErrorLine({ error }: { error: ApiError | string | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {typeof error === "string" ? error : errorText(error)}
    </p>
  );
}
