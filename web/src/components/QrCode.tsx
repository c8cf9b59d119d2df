// A QR code drawn in the browser (qrcode-generator) into an SVG built with DOM calls: no inline
// style attributes and no markup strings, so the CSP stays strict and nothing leaves the page.
import qrcode from "qrcode-generator";
import { useEffect, useRef } from "preact/hooks";

const SVG = "http://www.w3.org/2000/svg";

export function QrCode({ text, label }: { text: string; label: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const qr = qrcode(0, "M");
    qr.addData(text);
    qr.make();
    const n = qr.getModuleCount();
    const margin = 2;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${n + 2 * margin} ${n + 2 * margin}`);
    svg.setAttribute("class", "qr");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    svg.setAttribute("shape-rendering", "crispEdges");
    let d = "";
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + margin} ${r + margin}h1v1h-1z`;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "#000");
    svg.appendChild(path);
    el.replaceChildren(svg);
  }, [text, label]);
  return <div ref={host} data-testid="qr" />;
}
