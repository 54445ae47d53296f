// What every screen shares: the signed-in user, their settings, and the live inbox (unread
// count and newest notifications, fed by the BFF's event stream).

import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { bff, type Notification } from './api';
import { translator } from './i18n';
import { defaultSettings, legacySettings, saveSettings, syncSettings, type Settings } from './settings';
import { setTelemetry } from './telemetry';

interface AppValue {
  user: string;
  settings: Settings;
  /** The server's settings have arrived (or could not be read): forms may take defaults. */
  settingsLoaded: boolean;
  /** Saves to the server; rejects with its problem when a field is refused. */
  updateSettings: (s: Settings) => Promise<Settings>;
  unread: number;
  /** Notifications that arrived live since the app loaded, newest first. */
  arrived: Notification[];
  refreshUnread: () => void;
  /** Live announcements for screen readers. */
  announce: (message: string) => void;
  announcement: string;
}

const AppContext = createContext<AppValue | null>(null);

export function useApp(): AppValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside AppProvider');
  return value;
}

export function AppProvider({ user, serverTelemetry, children }: { user: string; serverTelemetry: boolean; children: ReactNode }) {
  // Until the server answers: what this browser may still hold from before, else defaults.
  const [settings, setSettings] = useState<Settings>(() => ({ ...defaultSettings(), ...legacySettings(user) }));
  const [settingsLoaded, setSettingsLoaded] = useState(false);
  const [unread, setUnread] = useState(0);
  const [arrived, setArrived] = useState<Notification[]>([]);
  const [announcement, setAnnouncement] = useState('');

  useEffect(() => setTelemetry(serverTelemetry && settings.telemetry), [serverTelemetry, settings.telemetry]);

  useEffect(() => {
    let live = true;
    syncSettings(user)
      .then(
        (s) => live && setSettings(s),
        () => undefined, // Offline or signed out: the screens keep what they have.
      )
      .finally(() => live && setSettingsLoaded(true));
    return () => {
      live = false;
    };
  }, [user]);

  const updateSettings = useCallback(async (s: Settings) => {
    const saved = await saveSettings(s);
    setSettings(saved);
    return saved;
  }, []);

  const refreshUnread = useCallback(() => {
    bff<{ unread: number }>('/api/notifications?limit=1')
      .then((page) => setUnread(page.unread))
      .catch(() => undefined);
  }, []);

  const announce = useCallback((message: string) => setAnnouncement(message), []);

  useEffect(() => {
    refreshUnread();
    if (typeof EventSource === 'undefined') return;
    const source = new EventSource('/bff/api/notifications/stream');
    source.addEventListener('notification', (event) => {
      const item = JSON.parse((event as MessageEvent<string>).data) as Notification;
      setArrived((list) => [item, ...list.filter((n) => n.id !== item.id)]);
      setUnread((n) => n + 1);
      // In the language the page is in now (prefs.ts keeps <html lang> in step).
      const { t } = translator(document.documentElement.lang || undefined);
      setAnnouncement(t('state.reminderArrived', { name: item.taskName }));
      // Quiet hours: the item is in the inbox, but the system does not announce it.
      if (!item.silent && document.hidden && 'Notification' in window && window.Notification.permission === 'granted') {
        new window.Notification(item.taskName, { body: t('state.notificationBody'), tag: item.id, icon: '/favicon.svg' });
      }
    });
    source.addEventListener('lagged', () => refreshUnread());
    return () => source.close();
  }, [refreshUnread]);

  return (
    <AppContext.Provider
      value={{ user, settings, settingsLoaded, updateSettings, unread, arrived, refreshUnread, announce, announcement, }}
    >
      {children}
    </AppContext.Provider>
  );
}

export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: Error; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the caller's deps say when to load again, as useEffect's do; `load` is a new closure on every render
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
