// A time-series chart (uPlot). Colours are read from the theme's CSS variables when the chart is
// made, and the chart is rebuilt when the theme or the data change; width follows the container.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface SeriesSpec {
  label: string;
  /** A CSS variable name (e.g. "--lvl-error") or a colour. */
  color: string;
  /** Draw as bars instead of a line. */
  bars?: boolean;
  fill?: boolean;
  dash?: number[];
}

interface Props {
  /** Unix seconds, ascending. */
  x: number[];
  series: { spec: SeriesSpec; values: (number | null)[] }[];
  height?: number;
  label: string;
  yLabel?: string;
  valueFormat?: (v: number) => string;
}

function cssColor(v: string): string {
  if (!v.startsWith("--")) return v;
  return getComputedStyle(document.documentElement).getPropertyValue(v).trim() || "#888";
}

export const THEME_EVENT = "ledger-theme-change";

export function Chart({ x, series, height = 220, label, yLabel, valueFormat }: Props) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    let plot: uPlot | null = null;
    const build = () => {
      plot?.destroy();
      const grid = cssColor("--chart-grid");
      const text = cssColor("--text-muted");
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      const bars = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
      const opts: uPlot.Options = {
        width: Math.max(200, el.clientWidth),
        height,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: {
            time: true,
            // Bars are centred on their bucket: leave half a bucket on each side.
            range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax => {
              if (!series.some((sr) => sr.spec.bars) || x.length < 2) return [min, max];
              const half = ((x[1] as number) - (x[0] as number)) / 2;
              return [min - half, max + half];
            },
          },
        },
        axes: [
          axis,
          {
            ...axis,
            label: yLabel,
            size: 72,
            values: valueFormat ? (_u: uPlot, vals: number[]) => vals.map((v) => valueFormat(v)) : undefined,
          },
        ],
        series: [
          {},
          ...series.map(({ spec }) => {
            const c = cssColor(spec.color);
            return {
              label: spec.label,
              stroke: c,
              width: spec.bars ? 0 : 1.75,
              fill: spec.bars || spec.fill ? `${c}${spec.bars ? "cc" : "33"}` : undefined,
              dash: spec.dash,
              paths: spec.bars ? bars : undefined,
              points: { show: false },
              value: valueFormat ? (_u: uPlot, v: number | null) => (v === null ? "—" : valueFormat(v)) : undefined,
            };
          }),
        ],
      };
      plot = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    };
    build();
    const ro = new ResizeObserver(() => {
      if (plot && Math.abs(plot.width - el.clientWidth) > 4) plot.setSize({ width: Math.max(200, el.clientWidth), height });
    });
    ro.observe(el);
    const mq = window.matchMedia("(prefers-color-scheme: dark)");
    mq.addEventListener("change", build);
    window.addEventListener(THEME_EVENT, build);
    return () => {
      ro.disconnect();
      mq.removeEventListener("change", build);
      window.removeEventListener(THEME_EVENT, build);
      plot?.destroy();
    };
  }, [x, series, height, yLabel, valueFormat]);
  return <div class="chart" ref={box} role="img" aria-label={label} />;
}
