// The view models of Today and Upcoming: upcoming occurrences as an agenda (by day in the
// user's zone, a repeating task once per day with its rule in a few words) and the day at a
// glance (what is open, what is still due today, what comes next). Pure functions of the API's
// answers and an explicit `now`, unit-tested without a browser.

import type { Occurrence, OccurrenceNote, Task, Upcoming } from './api';
import { translator, weekdayNames, type MessageKey } from './i18n';
import { describe, fromTask, joinAnd } from './recurrence';
import { clockTime } from './relative';
import { dayKey, groupByDay } from './time';

/** An upcoming occurrence as the API lists it, with its notes where it has any. */
export type AgendaItem = Upcoming;

/** One row of a day: a one-time occurrence, or every occurrence of a repeating task that day. */
export interface AgendaRow {
  key: string;
  taskId: string;
  taskName: string;
  /** The first occurrence of the task that day. */
  at: string;
  /** Its other occurrences that day, in order. */
  later: string[];
  repeats: boolean;
  /** The task's rule in a few words (`daily`, `every Monday`), when the task is known. */
  rule?: string;
  /** What the API says about these occurrences (a DST shift, a short month, quiet hours). */
  notes: OccurrenceNote[];
  /** Where an occurrence the user moved was due, by the instant it now has. */
  movedFrom: Array<{ at: string; from: string }>;
}

export interface AgendaDay {
  /** `2026-12-07`, in the user's zone. */
  day: string;
  rows: AgendaRow[];
}

/**
 * The occurrences (soonest first) by day in `timeZone`. A repeating task is one row per day,
 * at its first time that day with the rest listed; a one-time task's occurrences stay a row
 * each, as they are. `tasks` (any order, may be missing some) give the rules and the moves.
 */
/** `/bff/home`'s bounds on what it lists (crates/chime-http/src/bff/screens.rs). */
export const HOME_ITEMS = 60;
export const HOME_PER_TASK = 10;

/**
 * The items of the days the list covers completely, whether later days were cut, and the first
 * day that was (`horizon`). A task that reached the per-task bound (or the list that reached
 * its own) may have more on its last listed day and after it, so the agenda ends before that
 * day rather than show a repeating task as if it stopped. `bounds` are the list's: the home
 * call's by default.
 */
export function completeDays<T extends Upcoming>(
  items: T[],
  timeZone: string,
  bounds: { items: number; perTask: number } = { items: HOME_ITEMS, perTask: HOME_PER_TASK },
): { items: T[]; cut: boolean; horizon?: string } {
  const perTask = new Map<string, T[]>();
  for (const item of items) perTask.set(item.taskId, [...(perTask.get(item.taskId) ?? []), item]);
  const lastDays = [...perTask.values()]
    .filter((list) => list.length >= bounds.perTask)
    .map((list) => dayKey(list[list.length - 1]!.at, timeZone));
  if (items.length >= bounds.items) lastDays.push(dayKey(items[items.length - 1]!.at, timeZone));
  if (lastDays.length === 0) return { items, cut: false };
  const horizon = lastDays.sort()[0]!;
  return { items: items.filter((u) => dayKey(u.at, timeZone) < horizon), cut: true, horizon };
}

export function agenda(items: AgendaItem[], timeZone: string, tasks: Task[] = [], locale: string = 'en'): AgendaDay[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const rules = new Map<string, string | undefined>();
  const ruleOf = (id: string) => {
    if (!rules.has(id)) {
      const task = byId.get(id);
      rules.set(id, task ? ruleSummary(task, locale) : undefined);
    }
    return rules.get(id);
  };
  return groupByDay(items, (i) => i.at, timeZone).map(({ day, items: today }) => {
    const rows: AgendaRow[] = [];
    const repeating = new Map<string, AgendaRow>();
    for (const item of today) {
      const moved = byId.get(item.taskId)?.moved?.find((m) => Date.parse(m.to) === Date.parse(item.at));
      const row = item.repeats ? repeating.get(item.taskId) : undefined;
      if (row) {
        row.later.push(item.at);
        row.notes.push(...(item.notes ?? []));
        if (moved) row.movedFrom.push({ at: item.at, from: moved.from });
        continue;
      }
      const fresh: AgendaRow = {
        key: `${item.taskId}@${item.at}`,
        taskId: item.taskId,
        taskName: item.taskName,
        at: item.at,
        later: [],
        repeats: item.repeats,
        rule: item.repeats ? ruleOf(item.taskId) : undefined,
        notes: [...(item.notes ?? [])],
        movedFrom: moved ? [{ at: item.at, from: moved.from }] : [],
      };
      rows.push(fresh);
      if (item.repeats) repeating.set(item.taskId, fresh);
    }
    return { day, rows };
  });
}

const RULE_DAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];

/**
 * A task's rule in a few words for a row, in the locale's language: `daily`, `every Monday`,
 * `every 2 weeks on Monday and Wednesday`, `monthly on the second Tuesday`: the task form's
 * sentence (`describe`), in its short form. A custom rule is said as its frequency and weekdays
 * where that is the whole of it besides the times of day (which the row shows), else as the
 * rule itself.
 */
export function ruleSummary(task: Task, locale: string = 'en'): string | undefined {
  if (!task.repeats) return undefined;
  const form = fromTask(task, {});
  if (form.custom) return customRuleSummary(form.rrule.trim(), locale) ?? describe(form, locale, true);
  return describe(form, locale, true);
}

const UNITS: Record<string, [MessageKey, MessageKey]> = {
  MINUTELY: ['summary.minutely', 'summary.everyNMinutes'],
  HOURLY: ['summary.hourly', 'summary.everyNHours'],
  DAILY: ['summary.daily', 'rule.everyNDays'],
  WEEKLY: ['summary.weekly', 'rule.everyNWeeks'],
  MONTHLY: ['summary.monthly', 'rule.everyNMonths'],
  YEARLY: ['summary.yearly', 'rule.everyNYears'],
};

/** `FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17` as `daily on weekdays`; undefined for a
 * rule with parts a few words would get wrong (ordinals, BYSETPOS, BYMONTHDAY, …). */
function customRuleSummary(rule: string, locale: string): string | undefined {
  const { t } = translator(locale);
  const parts = new Map(rule.split(';').map((p) => p.split('=') as [string, string]));
  const known = new Set(['FREQ', 'INTERVAL', 'BYDAY', 'BYHOUR', 'BYMINUTE', 'COUNT', 'UNTIL', 'WKST']);
  if ([...parts.keys()].some((k) => !known.has(k))) return undefined;
  const n = Number(parts.get('INTERVAL') ?? '1');
  const unit = UNITS[parts.get('FREQ') ?? ''];
  if (!unit || !Number.isInteger(n) || n < 1) return undefined;
  let text = n === 1 ? t(unit[0]) : t(unit[1], { count: n }).replace(/^./, (c) => c.toLocaleLowerCase(locale));
  const days = parts.get('BYDAY');
  if (days) {
    const list = days.split(',');
    if (list.some((d) => !RULE_DAYS.includes(d))) return undefined;
    const set = [...list].sort().join(',');
    const short = weekdayNames(locale, 'short');
    if (set === 'FR,MO,TH,TU,WE') text += t('summary.onWeekdays');
    else if (set === 'SA,SU') text += t('summary.atWeekends');
    else text += t('rule.onDays', { days: list.map((d) => short[RULE_DAYS.indexOf(d)]).join(', ') });
  }
  return text;
}

/** A note in the locale's words: the API's parts put into the catalogue's sentence, its
 * English `text` for a kind this app does not know. `timeZone` is the user's, for when quiet
 * hours end; `at` is the occurrence's instant. */
export function noteText(note: OccurrenceNote, at: string, timeZone: string, locale: string = 'en'): string {
  const { t } = translator(locale);
  const day = (key: string) => new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'long', timeZone: 'UTC' }).format(new Date(`${key}T12:00:00Z`));
  switch (note.kind) {
    case 'dstGap':
      if (note.date && note.wall && note.firesAt) return t('note.dstGap', { wall: note.wall, date: day(note.date), time: note.firesAt });
      break;
    case 'dstRepeated':
      if (note.date && note.wall) return t('note.dstRepeated', { wall: note.wall, date: day(note.date) });
      break;
    case 'shortMonth':
      if (note.month && note.day) {
        const month = new Intl.DateTimeFormat(locale, { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(`${note.month}-15T12:00:00Z`));
        return t('note.shortMonth', { month, day: note.day });
      }
      break;
    case 'quietHours':
      if (note.sentAt && note.channels?.length) {
        const names: Record<string, MessageKey> = { email: 'note.channelEmail', sms: 'note.channelSms', push: 'note.channelPush' };
        const channels = joinAnd(
          note.channels.map((c) => (names[c] ? t(names[c]) : c)),
          t,
        );
        const time = clockTime(note.sentAt, timeZone, locale);
        const sameDay = dayKey(note.sentAt, timeZone) === dayKey(at, timeZone);
        const when = sameDay ? time : t('relative.onDay', { day: new Intl.DateTimeFormat(locale, { weekday: 'short', timeZone }).format(new Date(note.sentAt)), time });
        return t('note.quietHours', { channels, when });
      }
      break;
  }
  return note.text;
}

/** An open occurrence is overdue once it has waited this long for Done or Snooze. */
export const OVERDUE_AFTER_MINUTES = 30;
/** How many of what comes after today the Today screen names. */
export const NEXT_COUNT = 3;

export interface TodayView {
  /** Fired and not done, oldest first. */
  open: Array<{ occurrence: Occurrence; overdue: boolean }>;
  /** Still due today (after `now`), as agenda rows. */
  later: AgendaRow[];
  /** The first few after today, one per task. */
  next: AgendaItem[];
}

/** The day at a glance in `timeZone`, as of `now`. */
export function todayView(
  open: Occurrence[],
  upcoming: AgendaItem[],
  timeZone: string,
  now: Date,
  tasks: Task[] = [],
  locale: string = 'en',
): TodayView {
  const today = dayKey(now.toISOString(), timeZone);
  const overdueBefore = now.getTime() - OVERDUE_AFTER_MINUTES * 60_000;
  const sorted = [...open].sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
  const stillToday = upcoming.filter((u) => Date.parse(u.at) > now.getTime() && dayKey(u.at, timeZone) === today);
  const seen = new Set<string>();
  const next = upcoming
    .filter((u) => dayKey(u.at, timeZone) > today)
    .filter((u) => !seen.has(u.taskId) && seen.add(u.taskId))
    .slice(0, NEXT_COUNT);
  return {
    open: sorted.map((occurrence) => ({ occurrence, overdue: Date.parse(occurrence.dueAt) < overdueBefore })),
    later: agenda(stillToday, timeZone, tasks, locale)[0]?.rows ?? [],
    next,
  };
}
