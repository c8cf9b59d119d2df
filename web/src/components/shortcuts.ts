// Global keyboard shortcuts. Single keys are ignored while typing in a field.
//   /    focus the page's search box (the explorer's query, or any [data-search] input)
//   t    toggle live tail (the explorer's "Live tail" button)
//   g e  errors · g l logs · g m metrics · g p projects · g k API keys · g a alerts · g o monitors
//   g i  inbox
//   ?    this list
import { useEffect } from "preact/hooks";
import { href, navigate } from "../state/url";

export const SHORTCUTS: [string, string][] = [
  ["/", "Focus the search box"],
  ["t", "Toggle live tail (logs page)"],
  ["g e", "Go to errors"],
  ["g l", "Go to logs"],
  ["g m", "Go to metrics"],
  ["g p", "Go to projects"],
  ["g k", "Go to API keys"],
  ["g a", "Go to alerts"],
  ["g o", "Go to monitors"],
  ["g i", "Go to the inbox"],
  ["?", "Show this help"],
  ["Esc", "Close dialogs, leave a field"],
];

const GO: Record<string, string> = { e: "/errors", l: "/logs", m: "/analytics", p: "/projects", k: "/keys", a: "/alerts", o: "/monitors", i: "/inbox" };

function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

export function useShortcuts({ onHelp }: { onHelp: () => void }): void {
  useEffect(() => {
    let gPending = 0;
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "Escape" && typing(e.target)) {
        (e.target as HTMLElement).blur();
        return;
      }
      if (typing(e.target)) return;
      if (gPending && Date.now() - gPending < 1500) {
        gPending = 0;
        const dest = GO[e.key];
        if (dest) {
          e.preventDefault();
          navigate(href(dest));
        }
        return;
      }
      switch (e.key) {
        case "g":
          gPending = Date.now();
          break;
        case "/": {
          const box = document.querySelector<HTMLElement>('[aria-label="Query"], [data-search]');
          if (box) {
            e.preventDefault();
            box.focus();
          }
          break;
        }
        case "t": {
          const tail = document.querySelector<HTMLButtonElement>('button[aria-label="Live tail"]');
          if (tail) {
            e.preventDefault();
            tail.click();
          }
          break;
        }
        case "?":
          e.preventDefault();
          onHelp();
          break;
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onHelp]);
}
