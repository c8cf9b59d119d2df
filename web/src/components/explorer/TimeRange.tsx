// Time-range picker: relative presets (range=…) or a custom absolute range (from/to).
import { useEffect, useState } from 'preact/hooks';
import { RANGES } from './state';
import { fromLocalInput, toLocalInput, formatTime } from './format';

interface Props {
  range: string | null;
  from: string | null;
  to: string | null;
  onRange: (range: string) => void;
  onAbsolute: (from: string | null, to: string | null) => void;
}

export function TimeRange({ range, from, to, onRange, onAbsolute }: Props) {
  const [custom, setCustom] = useState(!range);
  const [f, setF] = useState(toLocalInput(from));
  const [t, setT] = useState(toLocalInput(to));
  useEffect(() => {
    setF(toLocalInput(from));
    setT(toLocalInput(to));
    if (!range) setCustom(true);
  }, [range, from, to]);

  return (
    <div class="time-range" data-testid="time-range">
      <label>
        <span class="visually-hidden">Time range</span>
        <select
          aria-label="Time range"
          value={range ?? 'custom'}
          onChange={(e) => {
            const v = (e.target as HTMLSelectElement).value;
            if (v === 'custom') setCustom(true);
            else {
              setCustom(false);
              onRange(v);
            }
          }}
        >
          {RANGES.map((r) => (
            <option key={r.key} value={r.key}>
              {r.label}
            </option>
          ))}
          <option value="custom">{range ? 'Custom…' : `${formatTime(from)} → ${to ? formatTime(to) : 'now'}`}</option>
        </select>
      </label>
      {custom && (
        <form
          class="time-custom"
          onSubmit={(e) => {
            e.preventDefault();
            onAbsolute(fromLocalInput(f), fromLocalInput(t));
          }}
        >
          <label>
            From <input type="datetime-local" aria-label="From" value={f} onInput={(e) => setF((e.target as HTMLInputElement).value)} required />
          </label>
          <label>
            To <input type="datetime-local" aria-label="To" value={t} onInput={(e) => setT((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">
            Apply
          </button>
        </form>
      )}
    </div>
  );
}
