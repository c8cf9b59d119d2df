// Level and type facets with counts over the current query and range; a click toggles the filter.
import type { Facets as FacetsData } from "../../api/types";
import { LEVELS, LOG_TYPES } from './state';
import { formatCount } from './format';

interface Props {
  facets: FacetsData | null;
  levels: string[];
  types: string[];
  onToggleLevel: (v: string) => void;
  onToggleType: (v: string) => void;
}

function Group(props: {
  title: string;
  values: readonly string[];
  counts: Record<string, number> | undefined;
  active: string[];
  kind: string;
  onToggle: (v: string) => void;
}) {
  // Known values first (zeros included), then any the server adds.
  const names = [...props.values];
  for (const k of Object.keys(props.counts ?? {})) if (!names.includes(k)) names.push(k);
  return (
    <fieldset class="facet-group">
      <legend>{props.title}</legend>
      <ul>
        {names.map((v) => {
          const n = props.counts?.[v];
          const on = props.active.includes(v);
          return (
            <li key={v}>
              <button
                type="button"
                class={'facet' + (on ? ' active' : '') + (n === 0 ? ' empty' : '')}
                aria-pressed={on}
                data-facet={`${props.kind}:${v}`}
                onClick={() => props.onToggle(v)}
              >
                {props.kind === 'level' ? <span class={`level-dot level-${v}`} aria-hidden="true" /> : null}
                <span class="facet-name">{v}</span>
                <span class="facet-count">{n === undefined ? '–' : formatCount(n)}</span>
              </button>
            </li>
          );
        })}
      </ul>
    </fieldset>
  );
}

export function Facets({ facets, levels, types, onToggleLevel, onToggleType }: Props) {
  return (
    <aside class="facets" data-testid="facets" aria-label="Filters">
      <Group title="Level" kind="level" values={LEVELS} counts={facets?.levels} active={levels} onToggle={onToggleLevel} />
      <Group title="Type" kind="type" values={LOG_TYPES} counts={facets?.log_types} active={types} onToggle={onToggleType} />
    </aside>
  );
}
