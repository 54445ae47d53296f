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

interface Home {
  upcoming: Upcoming[];
  unread: number;
  taskCount: number;
}

export function TodayScreen() {
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
      <h1 tabIndex={-1}>Today</h1>
      <p className="subtle">
        {new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', timeZone: zone }).format(now)} · times in {zone}.
      </p>
      {error && <ErrorMessage error={error} />}
      {!view && !error && <p aria-busy="true">Loading…</p>}
      {view && home.data?.taskCount === 0 && view.open.length === 0 && (
        <div className="empty">
          <p>No reminders yet.</p>
          <Link to="/tasks/new" className="button primary">
            Create a reminder
          </Link>
        </div>
      )}
      {empty && home.data?.taskCount !== 0 && (
        <div className="empty">
          <p>
            Nothing left today.
            {first ? (
              <>
                {' '}
                Next: <Link to={`/tasks/${first.taskId}`}>{first.taskName}</Link>, <RelativeTime at={first.at} />.
              </>
            ) : (
              ' Nothing is coming up.'
            )}
          </p>
        </div>
      )}
      {view && view.open.length > 0 && (
        <section aria-labelledby="open-now-heading">
          <h2 id="open-now-heading">Open now</h2>
          <ul className="list" aria-labelledby="open-now-heading">
            {view.open.map(({ occurrence: o, overdue }) => (
              <li key={o.key} className={overdue ? 'row open overdue' : 'row open'}>
                <div className="grow">
                  <Link to={`/tasks/${o.taskId}`}>{o.taskName}</Link>
                  {overdue && <span className="tag overdue">overdue</span>}
                  <div className="subtle">
                    Due <RelativeTime at={o.dueAt} />
                    {o.snoozedFrom && ' · sent again'}
                  </div>
                </div>
                <OccurrenceActions taskId={o.taskId} dueAt={o.dueAt} name={o.taskName ?? 'reminder'} onDone={onSettled} />
              </li>
            ))}
          </ul>
        </section>
      )}
      {view && view.later.length > 0 && (
        <section aria-labelledby="later-heading">
          <h2 id="later-heading">Later today</h2>
          <ul className="list" aria-labelledby="later-heading">
            {view.later.map((row) => (
              <LaterRow key={row.key} row={row} />
            ))}
          </ul>
        </section>
      )}
      {view && !empty && view.open.length > 0 && view.later.length === 0 && <p className="subtle">Nothing else is due today.</p>}
      {view && view.next.length > 0 && (
        <section aria-labelledby="next-heading">
          <h2 id="next-heading">Next</h2>
          <ul className="list" aria-labelledby="next-heading">
            {view.next.map((item) => (
              <li key={`${item.taskId}@${item.at}`} className="row">
                <RelativeTime at={item.at} className="when" />
                <Link to={`/tasks/${item.taskId}`}>{item.taskName}</Link>
              </li>
            ))}
          </ul>
          <p>
            <Link to="/upcoming">Everything coming up</Link>
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
