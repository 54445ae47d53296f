// Upcoming as a week or a month: a grid of days (the WAI-ARIA grid pattern: one day in the tab
// order, arrows move a day or a week, Home and End to the ends of the week, Page Up and Page
// Down a month, Enter or Space opens the day), each day with its first few reminders, and
// below it the list of the opened day's reminders as the agenda shows them. The days are
// calendar.ts's; the occurrences are the agenda's API's, read further ahead.

import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { bff, type Task, type Upcoming } from '../api';
import { agenda, completeDays, type AgendaRow } from '../agenda';
import { firstDayOfWeek, monthWeeks, moveFocus, weekDays, type GridDay } from '../calendar';
import { weekdayNames } from '../i18n';
import { useI18n } from '../i18n/react';
import { clockTime } from '../relative';
import { useApp, useAsync } from '../state';
import { dayKey, dayLabel } from '../time';
import { ErrorMessage } from '../screens/common';
import { AgendaRowItem } from './Agenda';
import { useNow } from './RelativeTime';

/** How far ahead the grids read: the API's largest page, and enough of a task that fires
 * three times a day for a month. */
export const GRID_ITEMS = 1000;
export const GRID_PER_TASK = 100;
/** A day shows this many reminders (a week's taller days more); the rest are counted. */
const SHOWN = { week: 8, month: 3 };

/** Noon UTC of a calendar day: formats its date in any zone without shifting it. */
const noon = (key: string) => new Date(`${key}T12:00:00Z`);

export function CalendarGrid({ mode, tasks }: { mode: 'week' | 'month'; tasks?: Task[] }) {
  const { t, locale } = useI18n();
  const { settings, arrived } = useApp();
  const now = useNow();
  const zone = settings.timeZone;
  const today = dayKey(now.toISOString(), zone);
  const data = useAsync(
    () => bff<{ occurrences: Upcoming[] }>(`/api/occurrences?limit=${GRID_ITEMS}&perTask=${GRID_PER_TASK}`),
    [arrived.length],
  );
  const [focused, setFocused] = useState(today);
  const [opened, setOpened] = useState<string | null>(null);
  const grid = useRef<HTMLTableElement>(null);
  const panel = useRef<HTMLHeadingElement>(null);
  // Set by a key in the grid: the newly focused day takes the keyboard focus once rendered.
  const moveKeyboard = useRef(false);
  const [focusAgain, setFocusAgain] = useState(0);
  const firstDay = firstDayOfWeek(locale);

  const shown = useMemo(
    () => (data.data ? completeDays(data.data.occurrences, zone, { items: GRID_ITEMS, perTask: GRID_PER_TASK }) : undefined),
    [data.data, zone],
  );
  const byDay = useMemo(() => {
    const map = new Map<string, AgendaRow[]>();
    for (const day of agenda(shown?.items ?? [], zone, tasks, locale)) map.set(day.day, day.rows);
    return map;
  }, [shown, zone, tasks, locale]);

  const weeks: GridDay[][] = mode === 'week' ? [weekDays(focused, firstDay, today)] : monthWeeks(focused, firstDay, today);
  const days = weeks.flat();
  const first = days[0]!.key;
  const last = days.at(-1)!.key;

  useEffect(() => {
    if (!moveKeyboard.current) return;
    moveKeyboard.current = false;
    grid.current?.querySelector<HTMLElement>(`[data-day="${focused}"]`)?.focus();
  }, [focused, mode, focusAgain]);

  const open = (key: string) => {
    setFocused(key);
    setOpened(key);
    // The list is below the grid: take the reader there.
    requestAnimationFrame(() => panel.current?.focus());
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTableElement>) => {
    const cell = (e.target as HTMLElement).closest<HTMLElement>('[data-day]');
    if (!cell || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open(cell.dataset.day!);
      return;
    }
    const next = moveFocus(e.key, cell.dataset.day!, firstDay, e.shiftKey);
    if (!next) return;
    e.preventDefault();
    moveKeyboard.current = true;
    setFocused(next);
  };

  // Previous and next week or month: the focused day moves with the period shown.
  const step = (n: number) => setFocused(moveFocus(mode === 'week' ? (n < 0 ? 'ArrowUp' : 'ArrowDown') : n < 0 ? 'PageUp' : 'PageDown', focused, firstDay)!);

  const title =
    mode === 'month'
      ? new Intl.DateTimeFormat(locale, { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(noon(focused))
      : new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).formatRange(noon(first), noon(last));
  const long = weekdayNames(locale, 'long');
  const short = weekdayNames(locale, 'short');
  const order = Array.from({ length: 7 }, (_, i) => (firstDay - 1 + i) % 7);
  const horizon = shown?.horizon;
  const known = (key: string) => key >= today && (!horizon || key < horizon);
  const fullDate = (key: string) =>
    new Intl.DateTimeFormat(locale, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(noon(key));

  return (
    <div className={`calendar calendar-${mode}`}>
      <div className="calendar-head">
        <h2 id="calendar-title" aria-live="polite">
          {title}
        </h2>
        <div className="actions">
          <button type="button" className="small" onClick={() => step(-1)}>
            <span aria-hidden="true">‹</span>
            {t(mode === 'week' ? 'calendar.previousWeek' : 'calendar.previousMonth')}
          </button>
          <button type="button" className="small" onClick={() => setFocused(today)} disabled={focused === today}>
            {t('calendar.today')}
          </button>
          <button type="button" className="small" onClick={() => step(1)}>
            {t(mode === 'week' ? 'calendar.nextWeek' : 'calendar.nextMonth')}
            <span aria-hidden="true">›</span>
          </button>
        </div>
      </div>
      <p className="hint" id="calendar-keys">
        {t('calendar.keys')}
      </p>
      {data.error && <ErrorMessage error={data.error} />}
      <table role="grid" ref={grid} aria-labelledby="calendar-title" aria-describedby="calendar-keys" aria-busy={!data.data} onKeyDown={onKeyDown}>
        <thead>
          <tr>
            {order.map((i) => (
              <th key={i} scope="col" abbr={long[i]}>
                {short[i]}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {weeks.map((week) => (
            <tr key={week[0]!.key}>
              {week.map((day) => {
                const rows = byDay.get(day.key) ?? [];
                const noted = rows.some((r) => r.notes.length > 0 || r.movedFrom.length > 0);
                const label = [
                  fullDate(day.key),
                  day.today ? t('calendar.isToday') : '',
                  known(day.key) ? t('calendar.count', { count: rows.length }) : '',
                  noted ? t('calendar.hasNotes') : '',
                ]
                  .filter(Boolean)
                  .join(', ');
                const classes = ['calendar-day', day.inMonth ? '' : 'outside', day.today ? 'today' : '', day.past ? 'past' : '', day.key === opened ? 'opened' : '']
                  .filter(Boolean)
                  .join(' ');
                return (
                  <td
                    key={day.key}
                    role="gridcell"
                    data-day={day.key}
                    className={classes}
                    tabIndex={day.key === focused ? 0 : -1}
                    aria-selected={day.key === opened}
                    aria-current={day.today ? 'date' : undefined}
                    onClick={() => open(day.key)}
                  >
                    {/* The cell's name, read from its content: what the eye gets from the number,
                        the count and the names, said in full. */}
                    <span className="visually-hidden">{label}</span>
                    <span className="calendar-date" aria-hidden="true">
                      {Number(day.key.slice(8))}
                    </span>
                    {rows.length > 0 && (
                      <span className="calendar-count" aria-hidden="true">
                        {rows.length}
                        {noted && '⚠'}
                      </span>
                    )}
                    <ul className="calendar-items" aria-hidden="true">
                      {rows.slice(0, SHOWN[mode]).map((row) => (
                        <li key={row.key} className={row.notes.length > 0 || row.movedFrom.length > 0 ? 'noted' : undefined}>
                          <span className="calendar-time">{clockTime(row.at, zone, locale)}</span> {row.taskName}
                        </li>
                      ))}
                      {rows.length > SHOWN[mode] && <li className="more">{t('calendar.more', { count: rows.length - SHOWN[mode] })}</li>}
                    </ul>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      {opened && (
        <section className="day-panel" aria-labelledby="day-panel-heading">
          <h3 id="day-panel-heading" tabIndex={-1} ref={panel}>
            {dayLabel(opened, zone, now, locale)}
          </h3>
          {opened < today && <p className="subtle">{t('calendar.past')}</p>}
          {horizon && opened >= horizon && <p className="subtle">{t('calendar.beyond')}</p>}
          {known(opened) && (byDay.get(opened)?.length ?? 0) === 0 && <p className="subtle">{t('calendar.nothing')}</p>}
          {known(opened) && (
            <ul className="list" aria-labelledby="day-panel-heading">
              {(byDay.get(opened) ?? []).map((row) => (
                <AgendaRowItem key={row.key} row={row} />
              ))}
            </ul>
          )}
          <button
            type="button"
            className="small"
            onClick={() => {
              setOpened(null);
              moveKeyboard.current = true;
              setFocused(opened);
              setFocusAgain((n) => n + 1);
            }}
          >
            {t('calendar.back')}
          </button>
        </section>
      )}
    </div>
  );
}
