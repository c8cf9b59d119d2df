// Formatting of times and numbers for display.

export function parseTime(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "3 min ago", "in 5 h", "2 d ago". */
export function relative(iso: string | null | undefined): string {
  const d = parseTime(iso);
  if (!d) return "—";
  const s = Math.round((d.getTime() - Date.now()) / 1000);
  const a = Math.abs(s);
  const fmt = (n: number, u: string) => (s <= 0 ? `${n} ${u} ago` : `in ${n} ${u}`);
  if (a < 45) return s <= 0 ? "just now" : "in a moment";
  if (a < 3600) return fmt(Math.round(a / 60), "min");
  if (a < 86400) return fmt(Math.round(a / 3600), "h");
  return fmt(Math.round(a / 86400), "d");
}

/** Local date and time, to the second. */
export function dateTime(iso: string | null | undefined): string {
  const d = parseTime(iso);
  if (!d) return "—";
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function count(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n.toLocaleString();
}

export function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return String(n);
}
