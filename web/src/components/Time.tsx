import { dateTime, relative } from "./format";

/** A timestamp shown relative ("5 min ago") with the exact local time as tooltip. */
export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={dateTime(iso)}>
      {relative(iso)}
    </time>
  );
}
