// Theme: follows the system (`prefers-color-scheme`) unless the user picks light or dark, which
// is remembered in localStorage and applied as `data-theme` on <html>.
export type ThemeChoice = "system" | "light" | "dark";

const KEY = "ledger.theme";

export function storedTheme(): ThemeChoice {
  const v = localStorage.getItem(KEY);
  return v === "light" || v === "dark" ? v : "system";
}

export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === "system") {
    root.removeAttribute("data-theme");
    localStorage.removeItem(KEY);
  } else {
    root.setAttribute("data-theme", choice);
    localStorage.setItem(KEY, choice);
  }
  // Charts read concrete colours from the theme and rebuild on this event.
  window.dispatchEvent(new Event("ledger-theme-change"));
}

export function nextTheme(choice: ThemeChoice): ThemeChoice {
  return choice === "system" ? "light" : choice === "light" ? "dark" : "system";
}

/** True when the page currently renders dark (for charts that need concrete colours). */
export function isDark(): boolean {
  const t = document.documentElement.getAttribute("data-theme");
  if (t === "dark") return true;
  if (t === "light") return false;
  return window.matchMedia("(prefers-color-scheme: dark)").matches;
}
