// Today, the home screen: what is open now (fired, not done: Done and Snooze at hand; the
// overdue ones marked), what is still due later today, and the next few after today. Two
// calls: the BFF's home (upcoming occurrences, the task count) and the open list, which the
// home call does not carry.

import { useEffect } from 'react';
import { bff, type Occurrence, type Upcoming } from '../api';
import { todayView, type AgendaRow } from '../agenda';
import { OccurrenceActions } from '../components/OccurrenceActions';
import { RelativeTime, useNow } from '../components/RelativeTime';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { ErrorMessage } from './common';
import { LaterTimes, RowNotes } from '../components/Agenda';
import { useI18n } from '../i18n/react';

interface Home {
  upcoming: Upcoming[];
  unread: number;
  taskCount: number;
}

export function TodayScreen() {
  const { t, rich, locale } = useI18n();
  const { settings, arrived, refreshUnread } = useApp();
  const now = useNow();
  const zone = settings.timeZone;
  // A reminder that arrived is open now (and no longer later today): load both again.
  const home = useAsync(() => bff<Home>('/home'), [arrived.length]);
  const open = useAsync(() => bff<{ occurrences: Occurrence[] }>('/api/occurrences/open?limit=50'), [arrived.length]);
  const view = home.data && open.data ? todayView(open.data.occurrences, home.data.upcoming, zone, now) : undefined;

  // One of today's times passed without a notification here (a task that is not in-app):
  // it is open now, if anything.
  const passed = home.data?.upcoming.filter((u) => Date.parse(u.at) <= now.getTime()).length ?? 0;
  const reloadHome = home.reload;
  const reloadOpen = open.reload;
  useEffect(() => {
    if (passed > 0) {
      reloadHome();
      reloadOpen();
    }
  }, [passed, reloadHome, reloadOpen]);

  const onSettled = (o: Occurrence) => {
    if (o.state === 'acknowledged') refreshUnread();
    reloadOpen();
    reloadHome();
  };

  const error = home.error ?? open.error;
  const empty = view && view.open.length === 0 && view.later.length === 0;
  const first = view?.next[0];
  return (
    <div className="today">
      <h1 tabIndex={-1}>{t('today.today')}</h1>
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
          <h2 id="open-now-heading">{t('today.openNow')}</h2>
          <ul className="list" aria-labelledby="open-now-heading">
            {view.open.map(({ occurrence: o, overdue }) => (
              <li key={o.key} className={overdue ? 'row open overdue' : 'row open'}>
                <div className="grow">
                  <Link to={`/tasks/${o.taskId}`}>{o.taskName}</Link>
                  {overdue && <span className="tag overdue">{t('today.overdue')}</span>}
                  <div className="subtle">
                    {rich('common.due', { when: <RelativeTime at={o.dueAt} /> })}
                    {o.snoozedFrom && t('common.sentAgain')}
                  </div>
                </div>
                <OccurrenceActions taskId={o.taskId} dueAt={o.dueAt} name={o.taskName ?? t('common.reminder')} onDone={onSettled} />
              </li>
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
