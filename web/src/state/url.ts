// The URL is the source of truth for what a page shows: filters, time range and the current
// project live in the query string, so any view can be shared as a link. Components read them
// with `useQuery()` and change them with `setParams()`; both go through history so back/forward
// work and every subscriber re-renders.
import { useEffect, useState } from "preact/hooks";

type Listener = () => void;
const listeners = new Set<Listener>();

function notify(): void {
  for (const fn of listeners) fn();
}

window.addEventListener("popstate", notify);

/** Re-renders the caller whenever the URL changes (navigation or a parameter change). */
export function useLocation(): { path: string; params: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const fn = () => setTick((t) => t + 1);
    listeners.add(fn);
    return () => {
      listeners.delete(fn);
    };
  }, []);
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

/** Reads a query parameter and re-renders when the URL changes. */
export function useParam(name: string): string | null {
  return useLocation().params.get(name);
}

export type ParamValue = string | number | null | undefined;

/**
 * Sets (or with null/undefined/"" removes) query parameters on the current path.
 * `replace` (default false) replaces the history entry instead of pushing one: use it for
 * typing in a search box, push for deliberate filter changes.
 */
export function setParams(values: Record<string, ParamValue>, opts: { replace?: boolean } = {}): void {
  const params = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === "") params.delete(k);
    else params.set(k, String(v));
  }
  const qs = params.toString();
  const url = `${location.pathname}${qs ? `?${qs}` : ""}${location.hash}`;
  if (url === `${location.pathname}${location.search}${location.hash}`) return;
  if (opts.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  notify();
}

/** Parameters that follow the user from page to page. */
const STICKY = ["project"];

/** A path with the sticky parameters (the current project) carried over. */
export function href(path: string, extra: Record<string, ParamValue> = {}): string {
  const [base, query = ""] = path.split("?", 2) as [string, string?];
  const params = new URLSearchParams(query);
  const now = new URLSearchParams(location.search);
  for (const k of STICKY) {
    const v = now.get(k);
    if (v !== null && !params.has(k)) params.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === null || v === undefined || v === "") params.delete(k);
    else params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${base}?${qs}` : base;
}

/** Goes to an in-app URL without reloading the page. */
export function navigate(url: string, opts: { replace?: boolean } = {}): void {
  if (url === `${location.pathname}${location.search}`) return;
  if (opts.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.scrollTo(0, 0);
  notify();
}

/** The current project id from `?project=`, or null. */
export function useProjectId(): number | null {
  const v = useParam("project");
  const n = v === null ? NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : null;
}
