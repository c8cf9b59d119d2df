// Loads one API resource for a view and re-loads it when `deps` change. The answer is a value:
// `data` or `error` (never a thrown exception).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ApiError, Result } from "../api/client";

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

export function useApi<T>(load: (() => Promise<Result<T>>) | null, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(load !== null);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const fn = loadRef.current;
    if (!fn) {
      setLoading(false);
      return;
    }
    let live = true;
    setLoading(true);
    void fn().then((r) => {
      if (!live) return;
      if (r.ok) {
        setData(r.value);
        setError(null);
      } else {
        setError(r.error);
      }
      setLoading(false);
    });
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
