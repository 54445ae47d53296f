import { expect, it } from 'vitest';
import { agenda } from './agenda';
import { addMonths, firstDayOfWeek, monthWeeks, moveFocus, weekDays } from './calendar';
import { dayKey, groupByDay } from './time';

const BERLIN = 'Europe/Berlin';

it('starts the week on Monday in Germany and Britain, on Sunday in the United States', () => {
  expect(firstDayOfWeek('de')).toBe(1);
  expect(firstDayOfWeek('de-DE')).toBe(1);
  expect(firstDayOfWeek('en-GB')).toBe(1);
  expect(firstDayOfWeek('en-US')).toBe(7);
  expect(weekDays('2026-12-09', 1, '2026-12-09').map((d) => d.key)).toEqual([
    '2026-12-07', '2026-12-08', '2026-12-09', '2026-12-10', '2026-12-11', '2026-12-12', '2026-12-13',
  ]);
  expect(weekDays('2026-12-09', 7, '2026-12-09')[0]!.key).toBe('2026-12-06');
});

it('a month grid is the whole weeks from its first day to its last, the neighbours’ days marked', () => {
  // February 2026 begins on a Sunday and ends on a Saturday.
  const monday = monthWeeks('2026-02-14', 1, '2026-02-10');
  expect(monday.length).toBe(5);
  expect(monday[0]![0]).toEqual({ key: '2026-01-26', inMonth: false, today: false, past: true });
  expect(monday[0]![6]!.key).toBe('2026-02-01');
  expect(monday.at(-1)!.at(-1)!.key).toBe('2026-03-01');
  // Weeks from Sunday: exactly four rows, nothing of the neighbours.
  const sunday = monthWeeks('2026-02-14', 7, '2026-02-10');
  expect(sunday.length).toBe(4);
  expect(sunday.flat().every((d) => d.inMonth)).toBe(true);
  expect(sunday.flat().find((d) => d.today)?.key).toBe('2026-02-10');
  // A 31-day month that starts on a Saturday needs six weeks from Monday.
  expect(monthWeeks('2026-08-01', 1, '2026-08-01').length).toBe(6);
});

it('moves the focus by the keys of the grid pattern, across month ends and to shorter months', () => {
  expect(moveFocus('ArrowRight', '2026-12-31', 1)).toBe('2027-01-01');
  expect(moveFocus('ArrowLeft', '2026-03-01', 1)).toBe('2026-02-28');
  expect(moveFocus('ArrowDown', '2026-12-28', 1)).toBe('2027-01-04');
  expect(moveFocus('ArrowUp', '2026-12-03', 1)).toBe('2026-11-26');
  expect(moveFocus('Home', '2026-12-09', 1)).toBe('2026-12-07');
  expect(moveFocus('End', '2026-12-09', 1)).toBe('2026-12-13');
  expect(moveFocus('Home', '2026-12-09', 7)).toBe('2026-12-06');
  expect(moveFocus('PageDown', '2027-01-31', 1)).toBe('2027-02-28');
  expect(moveFocus('PageDown', '2028-01-31', 1)).toBe('2028-02-29');
  expect(moveFocus('PageUp', '2026-03-31', 1)).toBe('2026-02-28');
  expect(moveFocus('PageDown', '2026-02-28', 1, true)).toBe('2027-02-28');
  expect(moveFocus('a', '2026-02-28', 1)).toBeUndefined();
  expect(addMonths('2026-12-15', 1)).toBe('2027-01-15');
});

it('the weeks of the DST changes have seven days, and occurrences around them fall on their local day', () => {
  // Berlin: clocks forward on 29 March 2026 (a 23-hour day), back on 25 October (25 hours).
  expect(weekDays('2026-03-29', 1, '2026-03-01').map((d) => d.key)).toEqual([
    '2026-03-23', '2026-03-24', '2026-03-25', '2026-03-26', '2026-03-27', '2026-03-28', '2026-03-29',
  ]);
  expect(weekDays('2026-10-26', 1, '2026-10-01')[0]!.key).toBe('2026-10-26');
  expect(monthWeeks('2026-10-25', 1, '2026-10-01').flat().filter((d) => d.inMonth).length).toBe(31);
  const items = [
    // 00:30 on 29 March in Berlin (still CET), the last minutes of 28 March in UTC.
    { at: '2026-03-28T23:30:00Z', taskId: 'a', taskName: 'Late', timeZone: BERLIN, repeats: false },
    // 03:30 CEST on 29 March, after the gap.
    { at: '2026-03-29T01:30:00Z', taskId: 'b', taskName: 'Early', timeZone: BERLIN, repeats: false },
    // 02:30 on 25 October happens twice; the first (CEST) and the second (CET) are the same day.
    { at: '2026-10-25T00:30:00Z', taskId: 'c', taskName: 'First', timeZone: BERLIN, repeats: false },
    { at: '2026-10-25T01:30:00Z', taskId: 'c', taskName: 'Second', timeZone: BERLIN, repeats: false },
    // 23:30 CET on 25 October: still that day, though 25 hours after its midnight minus one.
    { at: '2026-10-25T22:30:00Z', taskId: 'd', taskName: 'Night', timeZone: BERLIN, repeats: false },
  ];
  expect(groupByDay(items, (i) => i.at, BERLIN).map((g) => [g.day, g.items.length])).toEqual([
    ['2026-03-29', 2],
    ['2026-10-25', 3],
  ]);
  expect(agenda(items, BERLIN).map((d) => d.day)).toEqual(['2026-03-29', '2026-10-25']);
  expect(dayKey('2026-10-25T22:30:00Z', BERLIN)).toBe('2026-10-25');
});
