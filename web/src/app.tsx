// The application shell: session gate, navigation, project picker, banners, toasts, keyboard
// shortcuts and the current page.
import type { ComponentChildren, ComponentType } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { currentSession, onReachabilityChange, onSessionChange, pingServer, restoreSession, signOut, type SessionInfo } from "./api/client";
import { matchRoute } from "./router";
import { href, navigate, useLocation, setParams } from "./state/url";
import { ProjectsProvider, useProjects } from "./state/projects";
import { applyTheme, nextTheme, storedTheme, type ThemeChoice } from "./state/theme";
import { Toasts } from "./components/Toasts";
import { HelpDialog } from "./components/HelpDialog";
import { useShortcuts } from "./components/shortcuts";
import { Link } from "./components/Link";
import { InboxBell } from "./components/InboxBell";

type PageComponent = ComponentType<{ params: Record<string, string> }>;

const NAV: { path: string; label: string }[] = [
  { path: "/logs", label: "Logs" },
  { path: "/errors", label: "Errors" },
  { path: "/analytics", label: "Metrics" },
  { path: "/alerts", label: "Alerts" },
  { path: "/monitors", label: "Monitors" },
  { path: "/projects", label: "Projects" },
  { path: "/keys", label: "API keys" },
];

function ProjectPicker() {
  const { projects } = useProjects();
  const { params, path } = useLocation();
  const current = params.get("project");
  useEffect(() => {
    // Pages that show one project get the first one when the URL names none (or a stale one).
    if (!projects) return;
    if (projects.length === 0) {
      if (!["/projects", "/sessions", "/notifications", "/account", "/inbox"].includes(path)) navigate("/projects", { replace: true });
      return;
    }
    const known = projects.some((p) => String(p.project_id) === current);
    if (!known && path !== "/projects") setParams({ project: projects[0]?.project_id }, { replace: true });
  }, [projects, current, path]);
  if (!projects || projects.length === 0) return null;
  return (
    <label class="project-picker">
      <span class="visually-hidden">Project</span>
      <select
        aria-label="Project"
        value={current ?? ""}
        onChange={(e) => setParams({ project: (e.currentTarget as HTMLSelectElement).value, cursor: null })}
      >
        {projects.map((p) => (
          <option key={p.project_id} value={String(p.project_id)}>
            {p.name}
          </option>
        ))}
      </select>
    </label>
  );
}

function ThemeToggle() {
  const [theme, setTheme] = useState<ThemeChoice>(storedTheme());
  const label = theme === "system" ? "Theme: system" : theme === "light" ? "Theme: light" : "Theme: dark";
  return (
    <button
      type="button"
      class="ghost"
      aria-label={`${label} (click to change)`}
      title={label}
      onClick={() => {
        const t = nextTheme(theme);
        applyTheme(t);
        setTheme(t);
      }}
    >
      {theme === "system" ? "◐" : theme === "light" ? "☀" : "☾"}
    </button>
  );
}

function Shell({ session, children }: { session: SessionInfo; children: ComponentChildren }) {
  const { path } = useLocation();
  const [helpOpen, setHelpOpen] = useState(false);
  const menu = useRef<HTMLDetailsElement>(null);
  const openHelp = useCallback(() => setHelpOpen(true), []);
  useShortcuts({ onHelp: openHelp });
  useEffect(() => {
    if (menu.current) menu.current.open = false; // the account menu closes on navigation
  }, [path]);
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link class="brand" to="/logs">
          Ledger
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.path}>
                <Link to={n.path} aria-current={path === n.path || path.startsWith(`${n.path}/`) ? "page" : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="topbar-end">
          <ProjectPicker />
          <InboxBell />
          <ThemeToggle />
          <button type="button" class="ghost" aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" onClick={() => setHelpOpen(true)}>
            ?
          </button>
          <details class="account-menu" ref={menu}>
            <summary aria-label="Account menu">{session.email}</summary>
            <ul>
              <li>
                <Link to="/account">Account &amp; two-factor</Link>
              </li>
              <li>
                <Link to="/sessions">Sessions</Link>
              </li>
              <li>
                <Link to="/notifications">Notifications</Link>
              </li>
              <li>
                <button
                  type="button"
                  class="link"
                  onClick={async () => {
                    await signOut();
                    navigate("/signin?signed_out=1");
                  }}
                >
                  Sign out
                </button>
              </li>
            </ul>
          </details>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
      <Toasts />
      <HelpDialog open={helpOpen} onClose={() => setHelpOpen(false)} />
    </div>
  );
}

function UnreachableBanner() {
  const [down, setDown] = useState(false);
  useEffect(() => onReachabilityChange((ok) => setDown(!ok)), []);
  useEffect(() => {
    if (!down) return;
    // While the server is away, look for it every 5 s so the banner goes when it is back.
    const t = window.setInterval(() => void pingServer(), 5000);
    return () => window.clearInterval(t);
  }, [down]);
  if (!down) return null;
  return (
    <div class="banner banner-error" role="alert">
      Server unreachable: ledgerd does not answer. Showing what was loaded; actions will retry when it is back.
    </div>
  );
}

function PageHost({ load, params, title }: { load: () => Promise<PageComponent>; params: Record<string, string>; title: string }) {
  const [Page, setPage] = useState<PageComponent | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    setFailed(false);
    load().then(
      (C) => live && setPage(() => C),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [load]);
  useEffect(() => {
    document.title = `${title} · Ledger`;
  }, [title]);
  if (failed) return <p class="error">Could not load this page (server unreachable?). Reload to try again.</p>;
  if (!Page) return <p class="muted">Loading…</p>;
  return <Page params={params} />;
}

export function App() {
  const [ready, setReady] = useState(false);
  const [session, setSession] = useState<SessionInfo | null>(currentSession());
  const [expired, setExpired] = useState(false);
  const { path, params } = useLocation();

  useEffect(() => {
    const off = onSessionChange((s, wasExpired) => {
      setSession(s);
      if (!s && wasExpired) setExpired(true);
      if (s) setExpired(false);
    });
    void restoreSession().finally(() => {
      setSession(currentSession());
      setReady(true);
    });
    return off;
  }, []);

  const route = matchRoute(path);

  useEffect(() => {
    if (!ready) return;
    // Effects run after the render that scheduled them; the URL may have moved on since (a sign-out
    // handler navigates right after ending the session), so decide on the current location.
    if (matchRoute(location.pathname).public !== route.public) return;
    if (!session && !route.public) {
      const next = `${location.pathname}${location.search}`;
      navigate(`/signin?next=${encodeURIComponent(next)}${expired ? "&expired=1" : ""}`, { replace: true });
    } else if (session && route.public) {
      const next = params.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/logs", { replace: true });
    } else if (session && path === "/") {
      navigate(href("/logs"), { replace: true });
    }
  }, [ready, session, route.public, path, expired]);

  if (!ready) return <p class="boot muted">Loading…</p>;

  if (!session || route.public) {
    return (
      <>
        <UnreachableBanner />
        <main id="main" class="auth-main">
          {route.public ? <PageHost load={route.page} params={route.params} title={route.title} /> : null}
        </main>
      </>
    );
  }
  return (
    <ProjectsProvider key={session.accountId}>
      <UnreachableBanner />
      <Shell session={session}>
        <PageHost load={route.page} params={route.params} title={route.title} />
      </Shell>
    </ProjectsProvider>
  );
}
