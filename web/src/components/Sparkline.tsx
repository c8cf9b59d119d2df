// A tiny SVG line of hourly counts (no chart library: dozens of these can share a page).
export function Sparkline({ values, label, width = 120, height = 28 }: { values: number[]; label: string; width?: number; height?: number }) {
  const n = values.length;
  if (n === 0) return <span class="muted">—</span>;
  const max = Math.max(1, ...values);
  const step = n > 1 ? width / (n - 1) : width;
  const pts = values.map((v, i) => [i * step, height - 1 - (v / max) * (height - 3)] as const);
  const line = pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  const area = `${line}L${width},${height}L0,${height}Z`;
  const total = values.reduce((a, b) => a + b, 0);
  return (
    <svg class="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${label}: ${total} in 24 h`}>
      <path class="area" d={area} />
      <path d={line} />
    </svg>
  );
}
