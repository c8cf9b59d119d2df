// What a project page shows when the URL names no project of the account.
import { useProjects } from "../state/projects";
import { Link } from "./Link";

export function NeedProject() {
  const { projects } = useProjects();
  if (projects === null) return <p class="muted">Loading projects…</p>;
  if (projects.length === 0)
    return (
      <div class="card empty">
        <p>You have no project yet.</p>
        <Link to="/projects">Create your first project</Link>
      </div>
    );
  return <p class="muted">Choose a project.</p>;
}
