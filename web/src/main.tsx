import { render } from "preact";
import "./styles/theme.css";
import "./styles/app.css";
import { App } from "./app";
import { applyTheme, storedTheme } from "./state/theme";

applyTheme(storedTheme());
const root = document.getElementById("app");
if (root) render(<App />, root);
