// The query box: the search language of docs/query.md, submitted with Enter. A 400 from the server
// ("Invalid query at position N: reason") is shown under the box with a caret at that position.
import { useEffect, useRef, useState } from 'preact/hooks';
import { parseQueryError } from './format';

interface Props {
  value: string;
  error: string | null;
  onSubmit: (q: string) => void;
}

export function QueryBox({ value, error, onSubmit }: Props) {
  const [text, setText] = useState(value);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setText(value), [value]);

  const parsed = error ? parseQueryError(error) : null;
  const submit = (e: Event) => {
    e.preventDefault();
    onSubmit(text.trim());
  };

  return (
    <form class="query-box" role="search" onSubmit={submit}>
      <input
        ref={input}
        type="search"
        name="q"
        aria-label="Query"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? 'query-error' : undefined}
        placeholder='Search: timeout level:error "payment declined" attributes.user_id:42'
        autocomplete="off"
        spellcheck={false}
        value={text}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
        data-shortcut-search=""
      />
      <button type="submit">
        Search
      </button>
      {error && (
        <div id="query-error" class="query-error" role="alert" data-testid="query-error">
          {parsed ? (
            <>
              <span>
                Invalid query at position {parsed.position}: {parsed.reason}
              </span>
              <pre class="query-caret" aria-hidden="true">
                {value}
                {'\n'}
                {' '.repeat(Math.max(0, parsed.position - 1))}^
              </pre>
              <button
                type="button"
                class="link"
                onClick={() => {
                  const el = input.current;
                  if (!el) return;
                  el.focus();
                  const at = Math.min(parsed.position - 1, el.value.length);
                  el.setSelectionRange(at, at);
                }}
              >
                Go to position {parsed.position}
              </button>
            </>
          ) : (
            <span>{error}</span>
          )}
        </div>
      )}
    </form>
  );
}
