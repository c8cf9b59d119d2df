// An in-app link: a real <a href> (so it can be opened in a new tab and copied) that navigates
// without a reload on a plain click. The current project is carried over unless `to` sets one.
import type { ComponentChildren, JSX } from "preact";
import { href, navigate } from "../state/url";

type Props = Omit<JSX.HTMLAttributes<HTMLAnchorElement>, "href"> & {
  to: string;
  children: ComponentChildren;
};

export function Link({ to, children, ...rest }: Props) {
  const url = href(to);
  return (
    <a
      {...rest}
      href={url}
      onClick={(e) => {
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(url);
      }}
    >
      {children}
    </a>
  );
}
