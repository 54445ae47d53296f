import { describe, expect, it } from 'vitest';
import type { Occurrence, Task } from './api';
import type { OccurrenceNote } from './api';
import { agenda, completeDays, noteText, OVERDUE_AFTER_MINUTES, ruleSummary, todayView, type AgendaItem } from './agenda';

const SHORT_MONTH: OccurrenceNote = { kind: 'shortMonth', text: 'November 2026 has no day 31: that occurrence is skipped', month: '2026-11', day: 31 };

const BERLIN = 'Europe/Berlin';

function task(id: string, repeats: Task['repeats'], extra: Partial<Task> = {}): Task {
  return {
    id,
    name: id,
    description: null,
    startDate: '2026-12-07T08:00:00Z',
    timeZone: BERLIN,
    repeats,
    notify: { email: null, sms: null, push: false, inApp: true, webhook: false },
    missed: { policy: 'fireOnceLate' },
    nextExecutionDate: null,
    createdAt: '2026-12-01T00:00:00Z',
    modifiedAt: '2026-12-01T00:00:00Z',
    ...extra,
  };
}

function item(taskId: string, at: string, repeats = true, note?: OccurrenceNote): AgendaItem {
  return { at, taskId, taskName: taskId, timeZone: BERLIN, repeats, ...(note ? { notes: [note] } : {}) };
}

/** `n` instants a day apart from `first`. */
function daily(first: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => new Date(Date.parse(first) + i * 86_400_000).toISOString().replace('.000Z', 'Z'));
}

const byTime = (a: AgendaItem, b: AgendaItem) => Date.parse(a.at) - Date.parse(b.at);

it('groups the agenda by day in the user’s zone, across its midnight', () => {
  // 23:30 on Monday and 00:30 on Tuesday in Berlin: both Monday in UTC.
  const items = [item('late', '2026-12-07T22:30:00Z', false), item('early', '2026-12-07T23:30:00Z', false)];
  expect(agenda(items, BERLIN).map((d) => [d.day, d.rows.map((r) => r.taskName)])).toEqual([
    ['2026-12-07', ['late']],
    ['2026-12-08', ['early']],
  ]);
  expect(agenda(items, 'UTC').map((d) => [d.day, d.rows.length])).toEqual([['2026-12-07', 2]]);
  // In New York both are Monday afternoon.
  expect(agenda(items, 'America/New_York').map((d) => d.day)).toEqual(['2026-12-07']);
});

it('shows a daily task once per day with its rule, and a task several times a day as one row with its other times', () => {
  const pills = task('pills', { frequency: 1, period: 'day', on: null, ends: null });
  const stretch = task('stretch', { rrule: 'FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17' });
  const items = [
    ...daily('2026-12-07T07:00:00Z', 5).map((at) => item('pills', at)),
    ...['08', '12', '16'].flatMap((h) => daily(`2026-12-07T${h}:00:00Z`, 3).map((at) => item('stretch', at))),
    // A one-time task with a second time added that day: a row each, as they are.
    item('dentist', '2026-12-08T09:30:00Z', false),
    item('dentist', '2026-12-08T14:30:00Z', false),
  ].sort(byTime);
  const days = agenda(items, BERLIN, [pills, stretch]);
  expect(days.map((d) => d.day)).toEqual(['2026-12-07', '2026-12-08', '2026-12-09', '2026-12-10', '2026-12-11']);
  for (const day of days) {
    expect(day.rows.filter((r) => r.taskId === 'pills')).toHaveLength(1);
    expect(day.rows.filter((r) => r.taskId === 'stretch').length).toBeLessThanOrEqual(1);
  }
  const monday = days[0]!.rows;
  expect(monday.map((r) => [r.taskName, r.at, r.later, r.rule])).toEqual([
    ['pills', '2026-12-07T07:00:00Z', [], 'daily'],
    ['stretch', '2026-12-07T08:00:00Z', ['2026-12-07T12:00:00Z', '2026-12-07T16:00:00Z'], 'daily on weekdays'],
  ]);
  expect(days[1]!.rows.filter((r) => r.taskId === 'dentist').map((r) => [r.at, r.later, r.rule])).toEqual([
    ['2026-12-08T09:30:00Z', [], undefined],
    ['2026-12-08T14:30:00Z', [], undefined],
  ]);
  // Without the tasks (not loaded yet), the rows are the same, without rules.
  expect(agenda(items, BERLIN)[0]!.rows.map((r) => [r.taskName, r.later.length, r.rule])).toEqual([
    ['pills', 0, undefined],
    ['stretch', 2, undefined],
  ]);
});

it('keeps the API’s notes and says where a moved occurrence was due', () => {
  const gym = task('gym', { frequency: 1, period: 'day', on: null, ends: null }, { moved: [{ from: '2026-12-08T08:00:00Z', to: '2026-12-08T11:00:00Z' }] });
  const items = [
    item('rent', '2026-12-07T09:00:00Z', true, SHORT_MONTH),
    item('gym', '2026-12-07T08:00:00Z'),
    item('gym', '2026-12-08T11:00:00Z'),
  ].sort(byTime);
  const days = agenda(items, BERLIN, [gym]);
  expect(days[0]!.rows.find((r) => r.taskId === 'rent')?.notes).toEqual([SHORT_MONTH]);
  expect(days[0]!.rows.find((r) => r.taskId === 'gym')?.movedFrom).toEqual([]);
  expect(days[1]!.rows[0]!.movedFrom).toEqual([{ at: '2026-12-08T11:00:00Z', from: '2026-12-08T08:00:00Z' }]);
});

it('says a rule in a few words', () => {
  const week = (on: string[] | null, frequency = 1) => task('t', { frequency, period: 'week', on, ends: null });
  expect(ruleSummary(task('t', null))).toBeUndefined();
  expect(ruleSummary(task('t', { frequency: 1, period: 'day', on: null, ends: null }))).toBe('daily');
  expect(ruleSummary(task('t', { frequency: 3, period: 'day', on: null, ends: null }))).toBe('every 3 days');
  expect(ruleSummary(week(['monday']))).toBe('every Monday');
  expect(ruleSummary(week(null))).toBe('weekly');
  expect(ruleSummary(week(['monday', 'wednesday'], 2))).toBe('every 2 weeks on Monday and Wednesday');
  expect(ruleSummary(task('t', { frequency: 1, period: 'month', on: [-1], ends: 12 }))).toBe('monthly on the last day, 12 times');
  expect(ruleSummary(task('t', { rrule: 'FREQ=MONTHLY;BYDAY=2TU' }))).toBe('monthly on the second Tuesday');
  expect(ruleSummary(task('t', { rrule: 'FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=10' }))).toBe('weekly at weekends');
  expect(ruleSummary(task('t', { rrule: 'FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10,11' }))).toBe('every 15 minutes');
  expect(ruleSummary(task('t', { rrule: 'FREQ=HOURLY' }))).toBe('hourly');
  expect(ruleSummary(task('t', { rrule: 'FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU' }))).toBe('by the rule FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU');
});

function open(taskId: string, dueAt: string): Occurrence {
  return { key: `${taskId}@${dueAt}`, taskId, taskName: taskId, dueAt, seq: 1, state: 'open', firedAt: dueAt, expiresAt: '2026-12-31T00:00:00Z' };
}

it('lays out the day: open (overdue marked, oldest first), later today, and the next few after today', () => {
  // Monday 7 December, 14:00 in Berlin.
  const now = new Date('2026-12-07T13:00:00Z');
  const justNow = new Date(now.getTime() - 5 * 60_000).toISOString();
  const longAgo = new Date(now.getTime() - (OVERDUE_AFTER_MINUTES + 1) * 60_000).toISOString();
  const upcoming = [
    item('tea', '2026-12-07T15:00:00Z'),
    item('tea', '2026-12-07T17:00:00Z'),
    // 23:30 in Berlin: still today.
    item('bins', '2026-12-07T22:30:00Z', false),
    // 00:30 on Tuesday in Berlin (Monday in UTC): after today.
    item('pills', '2026-12-07T23:30:00Z'),
    item('tea', '2026-12-08T15:00:00Z'),
    item('pills', '2026-12-08T23:30:00Z'),
    item('gym', '2026-12-09T07:00:00Z'),
    item('rent', '2026-12-10T07:00:00Z'),
  ];
  const view = todayView([open('stretch', justNow), open('pills', longAgo)], upcoming, BERLIN, now);
  expect(view.open.map((o) => [o.occurrence.taskId, o.overdue])).toEqual([
    ['pills', true],
    ['stretch', false],
  ]);
  expect(view.later.map((r) => [r.taskId, r.at, r.later])).toEqual([
    ['tea', '2026-12-07T15:00:00Z', ['2026-12-07T17:00:00Z']],
    ['bins', '2026-12-07T22:30:00Z', []],
  ]);
  // One per task: tea's Tuesday time is left for tea's own page.
  expect(view.next.map((u) => [u.taskId, u.at])).toEqual([
    ['pills', '2026-12-07T23:30:00Z'],
    ['tea', '2026-12-08T15:00:00Z'],
    ['gym', '2026-12-09T07:00:00Z'],
  ]);
  // A time that passed since the list was loaded is not "later" any more.
  expect(todayView([], upcoming, BERLIN, new Date('2026-12-07T15:30:00Z')).later.map((r) => r.at)).toEqual([
    '2026-12-07T17:00:00Z',
    '2026-12-07T22:30:00Z',
  ]);
  // At 23:45 nothing is left today; next is what comes after.
  const late = todayView([], upcoming, BERLIN, new Date('2026-12-07T22:45:00Z'));
  expect([late.open.length, late.later.length, late.next[0]?.taskId]).toEqual([0, 0, 'pills']);
});

describe('completeDays', () => {
  const at = (iso: string, taskId: string) => ({ at: iso, taskId, taskName: taskId, timeZone: 'UTC', repeats: true });

  it('ends the agenda before the last day of a task that reached the per-task bound', () => {
    // Ten of a thrice-daily task reach into the fourth day; a weekly one goes further.
    const often = [1, 2, 3, 4].flatMap((d) => ['09', '13', '17'].map((h) => at(`2026-12-0${d}T${h}:00:00Z`, 'often'))).slice(0, 10);
    const weekly = [at('2026-12-02T08:00:00Z', 'weekly'), at('2026-12-09T08:00:00Z', 'weekly')];
    const items = [...often, ...weekly].sort((a, b) => a.at.localeCompare(b.at));
    const { items: shown, cut } = completeDays(items, 'UTC');
    expect(cut).toBe(true);
    expect(shown.map((u) => u.at.slice(0, 10)).every((d) => d < '2026-12-04')).toBe(true);
    expect(shown.filter((u) => u.taskId === 'often')).toHaveLength(9);
    expect(shown.some((u) => u.taskId === 'weekly' && u.at.startsWith('2026-12-09'))).toBe(false);
  });

  it('keeps everything when no bound was reached', () => {
    const items = [at('2026-12-01T09:00:00Z', 'a'), at('2026-12-20T09:00:00Z', 'b')];
    expect(completeDays(items, 'UTC')).toEqual({ items, cut: false });
  });
});

it('says the API’s notes in the locale’s words, and a kind it does not know in the API’s English', () => {
  const gap: OccurrenceNote = { kind: 'dstGap', text: 'x', date: '2027-03-28', wall: '02:30', firesAt: '03:30' };
  const at = '2027-03-28T01:30:00Z';
  expect(noteText(gap, at, BERLIN, 'en-GB')).toBe('02:30 does not exist on 28 March (the clocks go forward): it fires at 03:30');
  expect(noteText(gap, at, BERLIN, 'de-DE')).toBe('02:30 gibt es am 28. März nicht (die Uhren werden vorgestellt): sie löst um 03:30 aus');
  const twice: OccurrenceNote = { kind: 'dstRepeated', text: 'x', date: '2026-10-25', wall: '02:30' };
  expect(noteText(twice, '2026-10-25T00:30:00Z', BERLIN, 'en-GB')).toBe('02:30 happens twice on 25 October (the clocks go back): it fires once, at the first');
  expect(noteText(SHORT_MONTH, '2026-12-31T08:00:00Z', BERLIN, 'en-GB')).toBe('November 2026 has no day 31: that occurrence is skipped');
  expect(noteText(SHORT_MONTH, '2026-12-31T08:00:00Z', BERLIN, 'de-DE')).toBe('November 2026 hat keinen 31.: dieser Termin entfällt');
  // Quiet hours end the next morning: said with the weekday; the same day: the time alone.
  const quiet: OccurrenceNote = { kind: 'quietHours', text: 'x', channels: ['email', 'sms'], sentAt: '2026-12-08T06:00:00Z' };
  expect(noteText(quiet, '2026-12-07T22:30:00Z', BERLIN, 'en-GB')).toBe('email and SMS sent at Tue 07:00 (quiet hours)');
  expect(noteText(quiet, '2026-12-08T05:30:00Z', BERLIN, 'en-GB')).toBe('email and SMS sent at 07:00 (quiet hours)');
  expect(noteText(quiet, '2026-12-08T05:30:00Z', BERLIN, 'de-DE')).toBe('E-Mail und SMS gesendet um 07:00 (Ruhezeit)');
  expect(noteText({ kind: 'somethingNew', text: 'As the server says it' }, at, BERLIN, 'de-DE')).toBe('As the server says it');
});
