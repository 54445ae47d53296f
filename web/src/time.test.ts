import { expect, it } from 'vitest';
import { dayLabel, groupByDay, tomorrowAt } from './time';
import { match } from './router';

it('groups occurrences by their day in the user’s time zone', () => {
  const items = ['2026-12-01T22:30:00Z', '2026-12-01T23:30:00Z', '2026-12-02T08:00:00Z'];
  // In Berlin, 23:30Z is already 2 December.
  expect(groupByDay(items, (x) => x, 'Europe/Berlin').map((g) => [g.day, g.items.length])).toEqual([
    ['2026-12-01', 1],
    ['2026-12-02', 2],
  ]);
  expect(groupByDay(items, (x) => x, 'UTC').map((g) => g.items.length)).toEqual([2, 1]);
});

it('names today and tomorrow', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  expect(dayLabel('2026-12-01', 'UTC', now)).toBe('Today');
  expect(dayLabel('2026-12-02', 'UTC', now)).toBe('Tomorrow');
  expect(dayLabel('2026-12-09', 'UTC', now)).toMatch(/2026/);
});

it('routes paths to screens', () => {
  expect(match('/')).toEqual({ name: 'today' });
  expect(match('/upcoming/')).toEqual({ name: 'upcoming' });
  expect(match('/tasks/new')).toEqual({ name: 'new' });
  expect(match('/tasks/tsk_abc/edit')).toEqual({ name: 'edit', id: 'tsk_abc' });
  expect(match('/tasks/tsk_abc?x=1')).toEqual({ name: 'task', id: 'tsk_abc' });
  expect(match('/tasks/../etc')).toEqual({ name: 'notFound' });
});

it('finds tomorrow morning on the wall clock of the user’s zone, across DST changes', () => {
  // 23:30 in Berlin (CET): tomorrow is the 8th.
  expect(tomorrowAt(8, 'Europe/Berlin', new Date('2026-12-07T22:30:00Z'))).toBe('2026-12-08T07:00:00Z');
  // 00:30 in Berlin on the 8th: tomorrow is the 9th, though it is still the 7th in UTC.
  expect(tomorrowAt(8, 'Europe/Berlin', new Date('2026-12-07T23:30:00Z'))).toBe('2026-12-09T07:00:00Z');
  // Berlin springs forward overnight: 08:00 is CEST.
  expect(tomorrowAt(8, 'Europe/Berlin', new Date('2026-03-28T12:00:00Z'))).toBe('2026-03-29T06:00:00Z');
  // New York falls back overnight: 08:00 is EST.
  expect(tomorrowAt(8, 'America/New_York', new Date('2026-10-31T15:00:00Z'))).toBe('2026-11-01T13:00:00Z');
  expect(tomorrowAt(9, 'UTC', new Date('2026-12-31T23:59:00Z'))).toBe('2027-01-01T09:00:00Z');
});
