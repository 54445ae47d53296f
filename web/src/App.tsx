// The app's shell: sign-in when there is no session, else the navigation and the current
// screen. On every navigation, focus moves to the screen's heading so that a screen reader
// announces where the user is, and the skip link leads past the navigation.

import { useCallback, useEffect, useRef, useState } from 'react';
import { loadSession, SIGNED_OUT_EVENT, signOut, type SessionInfo } from './api';
import { Bell } from './components/Bell';
import { NavIcon } from './components/NavIcon';
import { Shortcuts } from './components/Shortcuts';
import { Link, match, RouterProvider, useRouter } from './router';
import { AppProvider, useApp } from './state';
import { SignIn } from './screens/SignIn';
import { TodayScreen } from './screens/Today';
import { UpcomingScreen } from './screens/Upcoming';
import { TasksScreen } from './screens/Tasks';
import { TaskFormScreen } from './screens/TaskForm';
import { TaskScreen } from './screens/Task';
import { InboxScreen } from './screens/Inbox';
import { SettingsScreen } from './screens/Settings';
import { useI18n } from './i18n/react';

export function App() {
  const { t } = useI18n();
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [failed, setFailed] = useState(false);
  const reload = () =>
    loadSession().then(
      (s) => {
        setFailed(false);
        setSession(s);
      },
      () => setFailed(true),
    );
  useEffect(() => {
    void reload();
    const onSignedOut = () => void reload();
    window.addEventListener(SIGNED_OUT_EVENT, onSignedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, onSignedOut);
  }, []);
  if (failed) {
    return (
      <main className="centered">
        <h1>{t('app.chime')}</h1>
        <p role="alert">{t('app.theServerCannotBe')}</p>
        <button type="button" onClick={() => void reload()}>
          {t('common.tryAgain')}
        </button>
      </main>
    );
  }
  if (!session) return <p className="centered" aria-busy="true">{t('common.loading')}</p>;
  if (!session.signedIn || !session.user) return <SignIn session={session} onSignedIn={() => void reload()} />;
  return (
    <RouterProvider>
      <AppProvider user={session.user} serverTelemetry={session.telemetry}>
        <Shell user={session.user} onSignedOut={() => void reload()} />
      </AppProvider>
    </RouterProvider>
  );
}

function Shell({ user, onSignedOut }: { user: string; onSignedOut: () => void }) {
  const { t, rich } = useI18n();
  const { path } = useRouter();
  const { unread, announcement } = useApp();
  const route = match(path);
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // What a keyboard shortcut that changed screen wants focused there instead of the heading.
  const arrival = useRef<((main: HTMLElement) => HTMLElement | null) | null>(null);
  const focusOnArrival = useCallback((find: (main: HTMLElement) => HTMLElement | null) => {
    arrival.current = find;
  }, []);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const find = arrival.current;
    arrival.current = null;
    const root = main.current;
    if (root) ((find && find(root)) ?? root.querySelector('h1'))?.focus();
  }, [path]);

  const nav: Array<{ to: string; label: string; active: boolean; badge?: number }> = [
    { to: '/', label: t('nav.today'), active: route.name === 'today' },
    { to: '/upcoming', label: t('nav.upcoming'), active: route.name === 'upcoming' },
    { to: '/tasks', label: t('nav.tasks'), active: ['tasks', 'task', 'edit'].includes(route.name) },
    { to: '/tasks/new', label: t('nav.newTask'), active: route.name === 'new' },
    { to: '/inbox', label: t('nav.inbox'), active: route.name === 'inbox', badge: unread },
    { to: '/settings', label: t('nav.settings'), active: route.name === 'settings' },
  ];
  return (
    <>
      <a className="skip" href="#main">
        {t('app.skipToContent')}
      </a>
      <header className="top">
        <Link to="/" className="brand">
          <Bell /> {t('app.chime')}
        </Link>
        <nav aria-label={t('app.main')}>
          <ul>
            {nav.map((item) => (
              <li key={item.to}>
                <Link to={item.to} aria-current={item.active ? 'page' : undefined}>
                  <NavIcon to={item.to} />
                  {item.label}
                  {item.badge ? (
                    <span className="badge">
                      {item.badge}
                      <span className="visually-hidden"> {t('app.unread')}</span>
                    </span>
                  ) : null}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="account">
          <span className="user" title={t('app.signedInAs')}>
            {user}
          </span>
          <button type="button" className="link-button" onClick={() => void signOut().finally(onSignedOut)}>
            {t('app.signOut')}
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {route.name === 'today' && <TodayScreen />}
        {route.name === 'upcoming' && <UpcomingScreen />}
        {route.name === 'tasks' && <TasksScreen />}
        {route.name === 'new' && <TaskFormScreen />}
        {route.name === 'edit' && <TaskFormScreen id={route.id} />}
        {route.name === 'task' && <TaskScreen id={route.id} />}
        {route.name === 'inbox' && <InboxScreen />}
        {route.name === 'settings' && <SettingsScreen />}
        {route.name === 'notFound' && (
          <>
            <h1 tabIndex={-1}>{t('app.notFound')}</h1>
            <p>
              {rich('app.nothingHere', { link: <Link to="/">{t('app.goToToday')}</Link> })}
            </p>
          </>
        )}
      </main>
      <div className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </div>
      <Shortcuts focusOnArrival={focusOnArrival} />
    </>
  );
}
