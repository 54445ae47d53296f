// Upcoming: the agenda. The next occurrences across every task by day in the user's time zone;
// a repeating task once per day, with its rule in a few words and its other times that day,
// rather than a row per occurrence. The tasks are read too, for their rules and moves.

import { bff, type Task, type Upcoming } from '../api';
import { agenda, completeDays } from '../agenda';
import { LaterTimes, RowNotes } from '../components/Agenda';
import { RelativeTime } from '../components/RelativeTime';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { dayLabel } from '../time';
import { ErrorMessage } from './common';
import { useI18n } from '../i18n/react';

interface Home {
  upcoming: Upcoming[];
  unread: number;
  taskCount: number;
}

export function UpcomingScreen() {
  const { t, rich, locale } = useI18n();
  const { settings, arrived } = useApp();
  // A notification that arrived means an occurrence passed: reload.
  const { data, error, loading } = useAsync(() => bff<Home>('/home'), [arrived.length]);
  // Without the tasks the agenda still shows, only without rules.
  const tasks = useAsync(() => bff<{ tasks: Task[] }>('/tasks'), []);
  const zone = settings.timeZone;
  const shown = data ? completeDays(data.upcoming, zone) : undefined;
  return (
    <>
      <h1 tabIndex={-1}>{t('upcoming.upcoming')}</h1>
      <p className="subtle">{t('upcoming.timesIn', { zone })}</p>
      {error && <ErrorMessage error={error} />}
      {!data && loading && <p aria-busy="true">{t('common.loading')}</p>}
      {data && data.upcoming.length === 0 && (
        <div className="empty">
          <p>{data.taskCount === 0 ? t('today.noRemindersYet') : t('upcoming.nothingComingUp')}</p>
          <Link to="/tasks/new" className="button primary">
            {t('common.createAReminder')}
          </Link>
        </div>
      )}
      {shown &&
        agenda(shown.items, zone, tasks.data?.tasks, locale).map((group) => (
          <section key={group.day} className="day" aria-labelledby={`day-${group.day}`}>
            <h2 id={`day-${group.day}`}>{dayLabel(group.day, zone, undefined, locale)}</h2>
            <ul className="list" aria-labelledby={`day-${group.day}`}>
              {group.rows.map((row) => (
                <li key={row.key} className="row agenda-row">
                  <RelativeTime at={row.at} className="when" clock />
                  <div className="grow">
                    <Link to={`/tasks/${row.taskId}`}>{row.taskName}</Link>
                    {row.repeats && <span className="tag rule">{row.rule ?? t('upcoming.repeats')}</span>}
                    <LaterTimes row={row} />
                    <RowNotes row={row} />
                  </div>
                </li>
              ))}
            </ul>
          </section>
        ))}
      {shown?.cut && (
        <p className="subtle">
          {rich('upcoming.laterDays', { link: <Link to="/tasks">{t('upcoming.allTasks')}</Link> })}
        </p>
      )}
    </>
  );
}
