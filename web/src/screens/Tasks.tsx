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
import { useI18n } from '../i18n/react';

export function TasksScreen() {
  const { t, locale } = useI18n();
  const { settings } = useApp();
  const [query, setQuery] = useState(() => new URLSearchParams(window.location.search).get('q') ?? '');
  const [debounced, setDebounced] = useState(query);
  const searched = useRef(false);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(query), 250);
    return () => clearTimeout(timer);
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
        <h1 tabIndex={-1}>{t('tasks.tasks')}</h1>
        <Link to="/tasks/new" className="button primary">
          {t('tasks.newTask')}
        </Link>
      </div>
      <QuickAdd />
      <search>
        <label htmlFor="search">{t('tasks.searchTasks')}</label>
        <input id="search" type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder={t('tasks.nameOrDescription')} />
      </search>
      {error && <ErrorMessage error={error} />}
      {!data && loading && <p aria-busy="true">{t('common.loading')}</p>}
      {data && (
        <p className="subtle" role="status">
          {debounced ? t('tasks.countMatching', { count: data.tasks.length, query: debounced }) : t('tasks.count', { count: data.tasks.length })}
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
                {t('tasks.summary', {
                  rule: describe(fromTask(task, {}), locale),
                  next: task.nextExecutionDate
                    ? t('tasks.next', { time: dateTime(task.nextExecutionDate, settings.timeZone, locale) })
                    : t('tasks.noMore'),
                })}
              </p>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
