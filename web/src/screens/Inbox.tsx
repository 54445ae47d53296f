// Inbox: in-app notifications, newest first; new ones arrive live over the BFF's event
// stream (see state.tsx), and a browser notification is shown when the tab is in the
// background and the user allowed it.

import { useMemo, useState } from 'react';
import { bff, type Notification } from '../api';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { track } from '../telemetry';
import { dateTime } from '../time';
import { ErrorMessage } from './common';

export function InboxScreen() {
  const { settings, arrived, refreshUnread, unread } = useApp();
  const { data, error, reload } = useAsync(() => bff<{ notifications: Notification[]; unread: number }>('/api/notifications?limit=100'), []);
  const [readNow, setReadNow] = useState<Set<string>>(new Set());
  const [permission, setPermission] = useState(() => ('Notification' in window ? window.Notification.permission : 'unsupported'));

  const items = useMemo(() => {
    const seen = new Set<string>();
    const all = [...arrived, ...(data?.notifications ?? [])].filter((n) => !seen.has(n.id) && seen.add(n.id));
    return all.map((n) => (readNow.has(n.id) ? { ...n, read: true } : n));
  }, [arrived, data, readNow]);

  const markRead = async (ids: string[], variant: 'one' | 'all') => {
    if (ids.length === 0) return;
    await bff('/api/notifications/read', { method: 'POST', body: { ids } });
    track('inbox_marked_read', variant);
    setReadNow((s) => new Set([...s, ...ids]));
    refreshUnread();
  };

  const askPermission = async () => {
    const result = await window.Notification.requestPermission();
    setPermission(result);
    if (result === 'granted' || result === 'denied') track('browser_notifications', result);
  };

  const unreadIds = items.filter((n) => !n.read).map((n) => n.id);
  return (
    <>
      <div className="heading-row">
        <h1 tabIndex={-1}>Inbox</h1>
        <button type="button" onClick={() => void markRead(unreadIds, 'all')} disabled={unreadIds.length === 0}>
          Mark all read
        </button>
      </div>
      <p className="subtle" aria-live="polite">
        {unread === 0 ? 'All caught up.' : `${unread} unread`}
      </p>
      {permission === 'default' && (
        <div className="banner">
          <p>Get a browser notification when a reminder arrives while Chime is in the background.</p>
          <button type="button" onClick={() => void askPermission()}>
            Turn on browser notifications
          </button>
        </div>
      )}
      {error && <ErrorMessage error={error} />}
      {error && (
        <button type="button" onClick={reload}>
          Retry
        </button>
      )}
      {items.length === 0 && data && <p>No notifications yet.</p>}
      <ul className="list inbox" aria-label="Notifications">
        {items.map((n) => (
          <li key={n.id} className={n.read ? 'row' : 'row unread'}>
            {!n.read && <span className="dot" aria-hidden="true" />}
            <div className="grow">
              <Link to={`/tasks/${n.taskId}`}>{n.taskName}</Link>
              {!n.read && <span className="visually-hidden"> (unread)</span>}
              <div className="subtle">
                Due <time dateTime={n.dueAt}>{dateTime(n.dueAt, settings.timeZone)}</time>
                {n.silent && ' · arrived during quiet hours'}
              </div>
            </div>
            {!n.read && (
              <button type="button" className="small" onClick={() => void markRead([n.id], 'one')}>
                Mark read<span className="visually-hidden">: {n.taskName}</span>
              </button>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}
