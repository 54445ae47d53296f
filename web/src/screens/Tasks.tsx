// Tasks: the user's tasks with search; each opens its page, where it can be edited or deleted.

import { useEffect, useRef, useState } from 'react';
import { bff, type Task } from '../api';
import { Link } from '../router';
import { useApp, useAsync } from '../state';
import { track } from '../telemetry';
import { dateTime } from '../time';
import { describe, fromTask } from '../recurrence';
import { ErrorMessage } from './common';
import { QuickAdd } from '../components/QuickAdd';

export function TasksScreen() {
  const { settings } = useApp();
  const [query, setQuery] = useState(() => new URLSearchParams(window.location.search).get('q') ?? '');
  const [debounced, setDebounced] = useState(query);
  const searched = useRef(false);
  useEffect(() => {
    const t = setTimeout(() => setDebounced(query), 250);
    return () => clearTimeout(t);
  }, [query]);
  useEffect(() => {
    if (debounced && !searched.current) {
      searched.current = true;
      track('search_used');
    }
  }, [debounced]);
  const { data, error, loading } = useAsync(
    () => bff<{ tasks: Task[] }>(`/tasks?q=${encodeURIComponent(debounced)}`),
    [debounced],
  );
  return (
    <>
      <div className="heading-row">
        <h1 tabIndex={-1}>Tasks</h1>
        <Link to="/tasks/new" className="button primary">
          New task
        </Link>
      </div>
      <QuickAdd />
      <search>
        <label htmlFor="search">Search tasks</label>
        <input id="search" type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Name or description" />
      </search>
      {error && <ErrorMessage error={error} />}
      {!data && loading && <p aria-busy="true">Loading…</p>}
      {data && (
        <p className="subtle" role="status">
          {data.tasks.length === 1 ? '1 task' : `${data.tasks.length} tasks`}
          {debounced ? ` matching “${debounced}”` : ''}
        </p>
      )}
      {data && (
        <ul className="list cards">
          {data.tasks.map((task) => (
            <li key={task.id} className="card">
              <h2>
                <Link to={`/tasks/${task.id}`}>{task.name}</Link>
              </h2>
              <p className="subtle">
                {describe(fromTask(task, {}))}
                {' · '}
                {task.nextExecutionDate ? `next ${dateTime(task.nextExecutionDate, settings.timeZone)}` : 'no more occurrences'}
              </p>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
