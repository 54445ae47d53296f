// A small router over the History API: the app has six screens, so a library would be more
// code than it saves. Links are real <a href>s (open in a new tab, screen readers announce
// them as links); a click navigates without a reload.

import { createContext, useCallback, useContext, useEffect, useState, type MouseEvent, type ReactNode } from 'react';

interface RouterValue {
  path: string;
  navigate: (to: string) => void;
}

const RouterContext = createContext<RouterValue>({ path: '/', navigate: () => undefined });

export function RouterProvider({ children }: { children: ReactNode }) {
  const [path, setPath] = useState(() => window.location.pathname + window.location.search);
  useEffect(() => {
    const onPop = () => setPath(window.location.pathname + window.location.search);
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const navigate = useCallback((to: string) => {
    window.history.pushState(null, '', to);
    setPath(to);
    window.scrollTo?.(0, 0);
  }, []);
  return <RouterContext.Provider value={{ path, navigate }}>{children}</RouterContext.Provider>;
}

export function useRouter(): RouterValue {
  return useContext(RouterContext);
}

export function Link({ to, children, className, ...rest }: { to: string; children: ReactNode; className?: string; 'aria-current'?: 'page' | undefined }) {
  const { navigate } = useRouter();
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} className={className} {...rest}>
      {children}
    </a>
  );
}

/** The route a path matches, with its parameters. */
export type Route =
  | { name: 'upcoming' }
  | { name: 'tasks' }
  | { name: 'new' }
  | { name: 'task'; id: string }
  | { name: 'edit'; id: string }
  | { name: 'inbox' }
  | { name: 'settings' }
  | { name: 'notFound' };

export function match(path: string): Route {
  const p = path.split('?')[0]!.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/upcoming') return { name: 'upcoming' };
  if (p === '/tasks') return { name: 'tasks' };
  if (p === '/tasks/new') return { name: 'new' };
  if (p === '/inbox') return { name: 'inbox' };
  if (p === '/settings') return { name: 'settings' };
  const edit = /^\/tasks\/([A-Za-z0-9_]+)\/edit$/.exec(p);
  if (edit) return { name: 'edit', id: edit[1]! };
  const task = /^\/tasks\/([A-Za-z0-9_]+)$/.exec(p);
  if (task) return { name: 'task', id: task[1]! };
  return { name: 'notFound' };
}
