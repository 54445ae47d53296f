// Upcoming: the agenda, or a week or a month. The agenda lists the next occurrences across
// every task by day in the user's time zone; a repeating task once per day, with its rule in a
// few words and its other times that day, rather than a row per occurrence. The week and month
// grids (components/CalendarGrid.tsx) show the same by calendar day. The tasks are read too,
// for their rules and moves. The view chosen is in the address (`?view=month`).

import { useState } from 'react';
import { bff, type Task, type Upcoming } from '../api';
import { agenda, completeDays } from '../agenda';
import { AgendaRowItem } from '../components/Agenda';
import { CalendarGrid } from '../components/CalendarGrid';
import type { MessageKey } from '../i18n';
import { useI18n } from '../i18n/react';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { dayLabel } from '../time';
import { ErrorMessage } from './common';

interface Home {
  upcoming: Upcoming[];
  unread: number;
  taskCount: number;
}

const VIEWS: Array<['agenda' | 'week' | 'month', MessageKey]> = [
  ['agenda', 'upcoming.viewAgenda'],
  ['week', 'upcoming.viewWeek'],
  ['month', 'upcoming.viewMonth'],
];
type View = (typeof VIEWS)[number][0];

function viewInAddress(): View {
  const view = new URLSearchParams(window.location.search).get('view');
  return view === 'week' || view === 'month' ? view : 'agenda';
}

export function UpcomingScreen() {
  const { t } = useI18n();
  const { settings } = useApp();
  const [view, setView] = useState<View>(viewInAddress);
  // Without the tasks the agenda still shows, only without rules.
  const tasks = useAsync(() => bff<{ tasks: Task[] }>('/tasks'), []);
  const choose = (next: View) => {
    setView(next);
    // In the address for a reload or a link, without a new history entry per click.
    window.history.replaceState(window.history.state, '', next === 'agenda' ? '/upcoming' : `/upcoming?view=${next}`);
  };
  return (
    <>
      <h1 tabIndex={-1}>{t('upcoming.upcoming')}</h1>
      <p className="subtle">{t('upcoming.timesIn', { zone: settings.timeZone })}</p>
      <div className="segmented" role="group" aria-label={t('upcoming.view')}>
        {VIEWS.map(([value, label]) => (
          <button key={value} type="button" aria-pressed={view === value} onClick={() => choose(value)}>
            {t(label)}
          </button>
        ))}
      </div>
      {view === 'agenda' ? <AgendaView tasks={tasks.data?.tasks} /> : <CalendarGrid key={view} mode={view} tasks={tasks.data?.tasks} />}
    </>
  );
}

function AgendaView({ tasks }: { tasks?: Task[] }) {
  const { t, rich, locale } = useI18n();
  const { settings, arrived } = useApp();
  // A notification that arrived means an occurrence passed: reload.
  const { data, error, loading } = useAsync(() => bff<Home>('/home'), [arrived.length]);
  const zone = settings.timeZone;
  const shown = data ? completeDays(data.upcoming, zone) : undefined;
  return (
    <>
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
        agenda(shown.items, zone, tasks, locale).map((group) => (
          <section key={group.day} className="day" aria-labelledby={`day-${group.day}`}>
            <h2 id={`day-${group.day}`}>{dayLabel(group.day, zone, undefined, locale)}</h2>
            <ul className="list" aria-labelledby={`day-${group.day}`}>
              {group.rows.map((row) => (
                <AgendaRowItem key={row.key} row={row} />
              ))}
            </ul>
          </section>
        ))}
      {shown?.cut && <p className="subtle">{rich('upcoming.laterDays', { link: <Link to="/tasks">{t('upcoming.allTasks')}</Link> })}</p>}
    </>
  );
}
