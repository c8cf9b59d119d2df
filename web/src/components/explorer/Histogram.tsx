// Volume histogram by level (GET /api/v1/logs/histogram) drawn with uPlot as stacked bars;
// click-drag across it selects a time range, which becomes the explorer's from/to (zoom).
// uPlot styles its elements through element.style (CSSOM), which the CSP allows.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Histogram as HistogramData } from "../../api/types";
import { LEVELS } from './state';

interface Props {
  data: HistogramData | null;
  loading: boolean;
  onZoom: (fromIso: string, toIso: string) => void;
}

// Drawn tallest (the total) first so each lower level paints over the part that is its own.
const ORDER = [...LEVELS].reverse(); // critical, error, warning, info, debug

function cssColor(level: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(`--lvl-${level}`).trim();
  return v || { debug: '#8a94a6', info: '#3b82f6', warning: '#f59e0b', error: '#ef4444', critical: '#a21caf' }[level] || '#888';
}

function toColumns(h: HistogramData): uPlot.AlignedData {
  const n = h.buckets.length;
  const xs = new Array<number>(n);
  const cum: number[][] = LEVELS.map(() => new Array<number>(n));
  for (let i = 0; i < n; i++) {
    const b = h.buckets[i] as unknown as Record<string, number | string>;
    xs[i] = Date.parse(b.timestamp as string) / 1000;
    let acc = 0;
    LEVELS.forEach((l, j) => {
      acc += Number(b[l] ?? 0);
      cum[j]![i] = acc;
    });
  }
  // cum[j] = levels 0..j stacked; series in ORDER need cum of (4 - k).
  return [xs, ...ORDER.map((_, k) => cum[LEVELS.length - 1 - k]!)];
}

export function Histogram({ data, loading, onZoom }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const inkRef = useRef("");
  const zoom = useRef(onZoom);
  zoom.current = onZoom;

  useEffect(() => {
    const el = box.current;
    if (!el || !data) return;
    const cols = toColumns(data);
    const width = el.clientWidth || 800;
    // Canvas text cannot use currentColor: the axes take the theme's colour when the plot is made,
    // and the plot is made again when the theme changed since.
    const ink = getComputedStyle(el).color || "#888";
    if (plot.current && inkRef.current === ink) {
      plot.current.setData(cols);
      return;
    }
    plot.current?.destroy();
    inkRef.current = ink;
    const bars = uPlot.paths.bars!({ size: [0.9, 64], align: 1 });
    const opts: uPlot.Options = {
      width,
      height: 120,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { stroke: ink, grid: { show: false }, ticks: { show: false } },
        { stroke: ink, size: 44, grid: { stroke: 'rgba(128,128,128,0.2)' }, ticks: { show: false } },
      ],
      series: [
        {},
        ...ORDER.map((l) => ({ label: l, fill: cssColor(l), stroke: cssColor(l), width: 0, paths: bars, points: { show: false } })),
      ],
      hooks: {
        setSelect: [
          (u: uPlot) => {
            if (u.select.width < 3) return;
            const a = u.posToVal(u.select.left, 'x');
            const b = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoom.current(new Date(a * 1000).toISOString(), new Date(b * 1000).toISOString());
          },
        ],
      },
    };
    plot.current = new uPlot(opts, cols, el);
  }, [data]);

  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver !== 'function') return;
    const ro = new ResizeObserver(() => {
      if (plot.current && el.clientWidth) plot.current.setSize({ width: el.clientWidth, height: 120 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  const total = data ? data.buckets.reduce((s, b) => s + LEVELS.reduce((t, l) => t + Number((b as unknown as Record<string, number>)[l] ?? 0), 0), 0) : null;
  return (
    <figure class="histogram" data-testid="histogram" aria-busy={loading}>
      <figcaption>
        <span>Volume by level</span>
        {total !== null && <span class="histogram-total">{total.toLocaleString()} logs</span>}
        {data && <span class="histogram-interval">per {formatInterval(data.interval_s)}</span>}
        <span class="histogram-hint">drag to zoom</span>
        <ul class="histogram-legend" aria-label="Levels">
          {LEVELS.map((l) => (
            <li key={l}>
              <span class={`level-dot level-${l}`} aria-hidden="true" />
              {l}
            </li>
          ))}
        </ul>
      </figcaption>
      {!data && !loading && <p class="histogram-none muted">No volume data for this range.</p>}
      <div class={"histogram-plot" + (data ? "" : " hidden")} ref={box} role="img" aria-label="Log volume by level over the time range; drag to zoom" />
    </figure>
  );
}

function formatInterval(s: number): string {
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}
