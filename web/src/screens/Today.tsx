// Today, the home screen: what is open now (fired, not done: Done and Snooze at hand, by
// button or by the `d` and `s` keys on a focused row; the overdue ones marked), what is still
// due later today, and the next few after today. One call, the BFF's home, carries it all (the
// open list, the upcoming occurrences, the task count), so the first screen needs one request.

import { useEffect, useState } from 'react';
import { bff, type Occurrence, type Upcoming } from '../api';
import { todayView, type AgendaRow } from '../agenda';
import { RelativeTime, useNow } from '../components/RelativeTime';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { ErrorMessage } from './common';
import { usePullToRefresh } from '../components/gestures';
import { OpenRow } from '../components/OpenRow';
import { useSettledFocus } from '../components/useSettledFocus';
import { LaterTimes, RowNotes } from '../components/Agenda';
import { useI18n } from '../i18n/react';

/** `GET /bff/home` (crates/chime-http/src/bff/screens.rs). */
export interface Home {
  /** Fired and not done, newest first. */
  open: Occurrence[];
  upcoming: Upcoming[];
  unread: number;
  taskCount: number;
}

export function TodayScreen() {
  const { t, rich, locale } = useI18n();
  const { settings, arrived, refreshUnread } = useApp();
  const now = useNow();
  const zone = settings.timeZone;
  // A reminder that arrived is open now (and no longer later today): load again.
  const home = useAsync(() => bff<Home>('/home'), [arrived.length]);
  // Done or snoozed here: gone from the list at once, whatever the reload brings.
  const [settled, setSettled] = useState<Set<string>>(new Set());
  const { list: openList, leaving } = useSettledFocus('open-now-heading');
  const view = home.data
    ? todayView(
        home.data.open.filter((o) => !settled.has(o.key)),
        home.data.upcoming,
        zone,
        now,
        [],
        locale,
      )
    : undefined;

  // One of today's times passed without a notification here (a task that is not in-app):
  // it is open now, if anything.
  const passed = home.data?.upcoming.filter((u) => Date.parse(u.at) <= now.getTime()).length ?? 0;
  const reloadHome = home.reload;
  useEffect(() => {
    if (passed > 0) reloadHome();
  }, [passed, reloadHome]);
  // Back to the app (a phone unlocked, a tab brought forward): what fired or was done
  // elsewhere meanwhile, without waiting for the next notification.
  useEffect(() => {
    const onVisible = () => {
      if (document.visibilityState === 'visible') reloadHome();
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [reloadHome]);
  const pull = usePullToRefresh(reloadHome);

  const onSettled = (key: string) => (o: Occurrence) => {
    leaving(key);
    setSettled((s) => new Set([...s, key]));
    if (o.state === 'acknowledged') refreshUnread();
    reloadHome();
  };

  const error = home.error;
  const empty = view && view.open.length === 0 && view.later.length === 0;
  const first = view?.next[0];
  return (
    <div className="today" {...pull.handlers}>
      <div className="pull-indicator" aria-hidden="true" style={{ height: pull.pull > 0 ? `${pull.pull / 2}px` : 0 }}>
        {pull.ready ? t('today.releaseToRefresh') : t('today.pullToRefresh')}
      </div>
      <div className="heading-row">
        <h1 tabIndex={-1}>{t('today.today')}</h1>
        <button type="button" className="small" onClick={reloadHome} aria-busy={home.loading}>
          {t('today.refresh')}
        </button>
      </div>
      <p className="subtle">
        {t('today.subtitle', {
          date: new Intl.DateTimeFormat(locale, { weekday: 'long', day: 'numeric', month: 'long', timeZone: zone }).format(now),
          zone,
        })}
      </p>
      {error && <ErrorMessage error={error} />}
      {!view && !error && <p aria-busy="true">{t('common.loading')}</p>}
      {view && home.data?.taskCount === 0 && view.open.length === 0 && (
        <div className="empty">
          <p>{t('today.noRemindersYet')}</p>
          <Link to="/tasks/new" className="button primary">
            {t('common.createAReminder')}
          </Link>
        </div>
      )}
      {empty && home.data?.taskCount !== 0 && (
        <div className="empty">
          <p>
            {first
              ? rich('today.nothingLeftNext', {
                  task: <Link to={`/tasks/${first.taskId}`}>{first.taskName}</Link>,
                  when: <RelativeTime at={first.at} />,
                })
              : t('today.nothingLeftNothingNext')}
          </p>
        </div>
      )}
      {view && view.open.length > 0 && (
        <section aria-labelledby="open-now-heading">
          <h2 id="open-now-heading" tabIndex={-1}>
            {t('today.openNow')}
          </h2>
          <ul className="list" aria-labelledby="open-now-heading" ref={openList}>
            {view.open.map(({ occurrence: o, overdue }) => (
              <OpenRow key={o.key} occurrence={o} overdue={overdue} onDone={onSettled(o.key)} />
            ))}
          </ul>
        </section>
      )}
      {view && view.later.length > 0 && (
        <section aria-labelledby="later-heading">
          <h2 id="later-heading">{t('today.laterToday')}</h2>
          <ul className="list" aria-labelledby="later-heading">
            {view.later.map((row) => (
              <LaterRow key={row.key} row={row} />
            ))}
          </ul>
        </section>
      )}
      {view && !empty && view.open.length > 0 && view.later.length === 0 && <p className="subtle">{t('today.nothingElseIsDue')}</p>}
      {view && view.next.length > 0 && (
        <section aria-labelledby="next-heading">
          <h2 id="next-heading">{t('today.next')}</h2>
          <ul className="list" aria-labelledby="next-heading">
            {view.next.map((item) => (
              <li key={`${item.taskId}@${item.at}`} className="row">
                <RelativeTime at={item.at} className="when" />
                <Link to={`/tasks/${item.taskId}`}>{item.taskName}</Link>
              </li>
            ))}
          </ul>
          <p>
            <Link to="/upcoming">{t('today.everythingComingUp')}</Link>
          </p>
        </section>
      )}
    </div>
  );
}

function LaterRow({ row }: { row: AgendaRow }) {
  return (
    <li className="row">
      <RelativeTime at={row.at} className="when" clock />
      <div className="grow">
        <Link to={`/tasks/${row.taskId}`}>{row.taskName}</Link>
        <LaterTimes row={row} />
        <RowNotes row={row} />
      </div>
    </li>
  );
}
