// A small router: a table of path patterns to lazily loaded pages. Paths are matched exactly or
// with `:name` segments; the query string belongs to the pages (see state/url.ts).
import type { ComponentType } from "preact";
// The explorer and sign-in are the usual first pages: bundled with the shell. Others load lazily.
import { Explorer } from "./pages/Explorer";
import { SignIn } from "./pages/SignIn";

export interface RouteMatch {
  page: () => Promise<ComponentType<{ params: Record<string, string> }>>;
  params: Record<string, string>;
  /** Pages reachable without a session. */
  public: boolean;
  title: string;
}

interface Route {
  pattern: string;
  title: string;
  public?: boolean;
  page: () => Promise<ComponentType<{ params: Record<string, string> }>>;
}

const ROUTES: Route[] = [
  { pattern: "/signin", title: "Sign in", public: true, page: () => Promise.resolve(SignIn) },
  { pattern: "/register", title: "Create account", public: true, page: () => import("./pages/Register").then((m) => m.Register) },
  { pattern: "/", title: "Overview", page: () => import("./pages/Home").then((m) => m.Home) },
  { pattern: "/logs", title: "Logs", page: () => Promise.resolve(Explorer) },
  { pattern: "/errors", title: "Errors", page: () => import("./pages/Errors").then((m) => m.Errors) },
  { pattern: "/errors/:id", title: "Error", page: () => import("./pages/ErrorDetail").then((m) => m.ErrorDetail) },
  // Not /metrics: that path is the server's Prometheus endpoint.
  { pattern: "/analytics", title: "Metrics", page: () => import("./pages/Metrics").then((m) => m.Metrics) },
  { pattern: "/projects", title: "Projects", page: () => import("./pages/Projects").then((m) => m.Projects) },
  { pattern: "/keys", title: "API keys", page: () => import("./pages/Keys").then((m) => m.Keys) },
  { pattern: "/sessions", title: "Sessions", page: () => import("./pages/Sessions").then((m) => m.Sessions) },
  { pattern: "/notifications", title: "Notifications", page: () => import("./pages/Notifications").then((m) => m.Notifications) },
  { pattern: "/alerts", title: "Alerts", page: () => import("./pages/Alerts").then((m) => m.Alerts) },
  { pattern: "/monitors", title: "Monitors", page: () => import("./pages/Monitors").then((m) => m.Monitors) },
  { pattern: "/inbox", title: "Inbox", page: () => import("./pages/Inbox").then((m) => m.Inbox) },
  { pattern: "/account", title: "Account", page: () => import("./pages/Account").then((m) => m.Account) },
];

const NOT_FOUND: Route = {
  pattern: "*",
  title: "Not found",
  page: () => import("./pages/NotFound").then((m) => m.NotFound),
};

function matchPattern(pattern: string, path: string): Record<string, string> | null {
  const a = pattern.split("/").filter(Boolean);
  const b = path.split("/").filter(Boolean);
  if (a.length !== b.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    const seg = a[i] as string;
    const got = b[i] as string;
    if (seg.startsWith(":")) params[seg.slice(1)] = decodeURIComponent(got);
    else if (seg !== got) return null;
  }
  return params;
}

export function matchRoute(path: string): RouteMatch {
  const normalized = path.length > 1 ? path.replace(/\/+$/, "") : path;
  for (const r of ROUTES) {
    const params = matchPattern(r.pattern, normalized);
    if (params) return { page: r.page, params, public: r.public === true, title: r.title };
  }
  return { page: NOT_FOUND.page, params: {}, public: false, title: NOT_FOUND.title };
}
