// The signed-in account's projects, loaded once per session and shared through a context; the
// current one is `?project=<id>` in the URL (state/url.ts).
import { createContext, type ComponentChildren } from "preact";
import { useCallback, useContext, useEffect, useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import type { Project, ProjectList } from "../api/types";
import { useProjectId } from "./url";

export interface ProjectsState {
  projects: Project[] | null;
  error: ApiError | null;
  reload: () => Promise<void>;
}

const Ctx = createContext<ProjectsState>({ projects: null, error: null, reload: async () => {} });

export function ProjectsProvider({ children }: { children: ComponentChildren }) {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const reload = useCallback(async () => {
    const r = await api.get<ProjectList>("/api/v1/projects");
    if (r.ok) {
      setProjects(r.value.projects);
      setError(null);
    } else {
      setError(r.error);
    }
  }, []);
  useEffect(() => {
    void reload();
  }, [reload]);
  return <Ctx.Provider value={{ projects, error, reload }}>{children}</Ctx.Provider>;
}

export function useProjects(): ProjectsState {
  return useContext(Ctx);
}

/** The project named by `?project=`, if it is one of the account's. */
export function useCurrentProject(): Project | null {
  const id = useProjectId();
  const { projects } = useProjects();
  if (!projects || id === null) return null;
  return projects.find((p) => p.project_id === id) ?? null;
}
