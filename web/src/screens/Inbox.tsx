// Inbox: first what is open (fired, not done: Done and Snooze at hand), then the in-app
// notifications, newest first; new ones arrive live over the BFF's event stream (see
// state.tsx), and a browser notification is shown when the tab is in the background and the
// user allowed it.

import { useEffect, useMemo, useState } from 'react';
import { bff, type Notification, type Occurrence } from '../api';
import { RelativeTime } from '../components/RelativeTime';
import { OccurrenceActions } from '../components/OccurrenceActions';
import { OpenRow } from '../components/OpenRow';
import { useSettledFocus } from '../components/useSettledFocus';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { track } from '../telemetry';
import { ErrorMessage } from './common';
import { useI18n } from '../i18n/react';

export function InboxScreen() {
  const { t, rich } = useI18n();
  const { arrived, refreshUnread, unread } = useApp();
  const { data, error, reload } = useAsync(() => bff<{ notifications: Notification[]; unread: number }>('/api/notifications?limit=100'), []);
  const open = useAsync(() => bff<{ occurrences: Occurrence[] }>('/api/occurrences/open?limit=50'), []);
  const snoozed = useAsync(() => bff<{ occurrences: Occurrence[] }>('/api/occurrences/snoozed?limit=50'), []);
  const [readNow, setReadNow] = useState<Set<string>>(new Set());
  // Done or snoozed here: gone from the open list at once, whatever the reload brings.
  const [settled, setSettled] = useState<Set<string>>(new Set());
  // Done here: its notifications are read (the server marked them so).
  const [done, setDone] = useState<Set<string>>(new Set());
  const reloadOpen = open.reload;
  const reloadSnoozed = snoozed.reload;
  // A reminder that arrives is open (and may be a snooze's return): show it there too.
  useEffect(() => {
    if (arrived.length > 0) {
      reloadOpen();
      reloadSnoozed();
    }
  }, [arrived.length, reloadOpen, reloadSnoozed]);
  // An open reminder that leaves while it holds focus hands focus to the next one (or the
  // heading), so the keyboard, and the `d` and `s` shortcuts, carry on down the list.
  const { list: openList, leaving } = useSettledFocus('open-heading');
  const [permission, setPermission] = useState(() => ('Notification' in window ? window.Notification.permission : 'unsupported'));

  const items = useMemo(() => {
    const seen = new Set<string>();
    const all = [...arrived, ...(data?.notifications ?? [])].filter((n) => !seen.has(n.id) && seen.add(n.id));
    // Done marks the occurrence's items read on the server too.
    return all.map((n) => (readNow.has(n.id) || done.has(`${n.taskId}@${n.dueAt}`) ? { ...n, read: true } : n));
  }, [arrived, data, readNow, done]);
  const openItems = (open.data?.occurrences ?? []).filter((o) => !settled.has(o.key));
  // A snooze moved again is listed again, at its new instant.
  const snoozedItems = (snoozed.data?.occurrences ?? []).filter((o) => !settled.has(`${o.key}/${o.snoozedUntil}`));

  const onSettled = (key: string) => (o: Occurrence) => {
    leaving(key);
    setSettled((s) => new Set([...s, key]));
    if (o.state === 'acknowledged') {
      setDone((s) => new Set([...s, o.key]));
      refreshUnread();
    }
    reloadOpen();
    reloadSnoozed();
  };

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
        <h1 tabIndex={-1}>{t('inbox.inbox')}</h1>
        <button type="button" onClick={() => void markRead(unreadIds, 'all')} disabled={unreadIds.length === 0}>
          {t('inbox.markAllRead')}
        </button>
      </div>
      <p className="subtle" aria-live="polite">
        {unread === 0 ? t('inbox.allCaughtUp') : t('inbox.unread', { count: unread })}
      </p>
      {permission === 'default' && (
        <div className="banner">
          <p>{t('inbox.getABrowserNotification')}</p>
          <button type="button" onClick={() => void askPermission()}>
            {t('inbox.turnOnBrowserNotifications')}
          </button>
        </div>
      )}
      <section aria-labelledby="open-heading">
        <h2 id="open-heading" tabIndex={-1}>
          {t('inbox.open')}
        </h2>
        {open.error && <ErrorMessage error={open.error} />}
        {open.data && openItems.length === 0 && <p className="subtle">{t('inbox.nothingWaitingForYou')}</p>}
        <ul className="list" aria-label={t('inbox.openReminders')} ref={openList}>
          {openItems.map((o) => (
            <OpenRow key={o.key} occurrence={o} onDone={onSettled(o.key)} />
          ))}
        </ul>
      </section>
      {snoozedItems.length > 0 && (
        <section aria-labelledby="snoozed-heading">
          <h2 id="snoozed-heading">{t('inbox.snoozed')}</h2>
          <ul className="list" aria-label={t('inbox.snoozedReminders')}>
            {snoozedItems.map((o) => (
              <li key={o.key} className="row open">
                <div className="grow">
                  <Link to={`/tasks/${o.taskId}`}>{o.taskName}</Link>
                  <div className="subtle">
                    {rich('inbox.back', { when: <RelativeTime at={o.snoozedUntil ?? o.dueAt} /> })}
                  </div>
                </div>
                <OccurrenceActions
                  taskId={o.taskId}
                  dueAt={o.dueAt}
                  name={o.taskName ?? t('common.reminder')}
                  onDone={onSettled(`${o.key}/${o.snoozedUntil}`)}
                />
              </li>
            ))}
          </ul>
        </section>
      )}
      <h2>{t('inbox.notifications')}</h2>
      {error && <ErrorMessage error={error} />}
      {error && (
        <button type="button" onClick={reload}>
          {t('common.retry')}
        </button>
      )}
      {items.length === 0 && data && <p>{t('inbox.noNotificationsYet')}</p>}
      <ul className="list inbox" aria-label={t('inbox.notifications')}>
        {items.map((n) => (
          <li key={n.id} className={n.read ? 'row' : 'row unread'}>
            {!n.read && <span className="dot" aria-hidden="true" />}
            <div className="grow">
              <Link to={`/tasks/${n.taskId}`}>{n.taskName}</Link>
              {!n.read && <span className="visually-hidden"> {t('inbox.unreadMark')}</span>}
              <div className="subtle">
                {rich('common.due', { when: <RelativeTime at={n.dueAt} /> })}
                {n.silent && t('inbox.quietHours')}
              </div>
            </div>
            {!n.read && (
              <button type="button" className="small" onClick={() => void markRead([n.id], 'one')}>
                {t('inbox.markRead')}<span className="visually-hidden">: {n.taskName}</span>
              </button>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}
