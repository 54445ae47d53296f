// Upcoming: the next occurrences across every task, grouped by day in the user's time zone.

import { bff, type Upcoming } from '../api';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { dayLabel, groupByDay, timeOf } from '../time';
import { ErrorMessage } from './common';

interface Home {
  upcoming: Upcoming[];
  unread: number;
  taskCount: number;
}

export function UpcomingScreen() {
  const { settings, arrived } = useApp();
  // A notification that arrived means an occurrence passed: reload.
  const { data, error, loading } = useAsync(() => bff<Home>('/home'), [arrived.length]);
  const zone = settings.timeZone;
  return (
    <>
      <h1 tabIndex={-1}>Upcoming</h1>
      <p className="subtle">Times in {zone}.</p>
      {error && <ErrorMessage error={error} />}
      {!data && loading && <p aria-busy="true">Loading…</p>}
      {data && data.upcoming.length === 0 && (
        <div className="empty">
          <p>{data.taskCount === 0 ? 'No reminders yet.' : 'Nothing is coming up.'}</p>
          <Link to="/tasks/new" className="button primary">
            Create a reminder
          </Link>
        </div>
      )}
      {data &&
        groupByDay(data.upcoming, (u) => u.at, zone).map((group) => (
          <section key={group.day} className="day" aria-labelledby={`day-${group.day}`}>
            <h2 id={`day-${group.day}`}>{dayLabel(group.day, zone)}</h2>
            <ul className="list">
              {group.items.map((item) => (
                <li key={`${item.taskId}-${item.at}`} className="row">
                  <time dateTime={item.at} className="when">
                    {timeOf(item.at, zone)}
                  </time>
                  <Link to={`/tasks/${item.taskId}`}>{item.taskName}</Link>
                  {item.repeats && <span className="tag">repeats</span>}
                </li>
              ))}
            </ul>
          </section>
        ))}
    </>
  );
}
