import { expect, it } from 'vitest';
import { absoluteTime, clockTime, daysBetween, relativeTime, twelveHour } from './relative';

const BERLIN = 'Europe/Berlin';
const say = (at: string, now: string, zone = BERLIN, locale = 'en-GB') => relativeTime(at, new Date(now), zone, locale);

it('says a time within the hour in minutes, either way', () => {
  const now = '2026-12-07T13:40:00Z';
  expect(say('2026-12-07T14:00:00Z', now)).toBe('in 20 min');
  expect(say('2026-12-07T13:35:00Z', now)).toBe('5 min ago');
  expect(say('2026-12-07T13:40:30Z', now)).toBe('now');
  expect(say('2026-12-07T14:39:00Z', now)).toBe('in 59 min');
});

it('says today, tomorrow, yesterday, a weekday within the week, else a date', () => {
  // Monday 7 December, 09:00 in Berlin.
  const now = '2026-12-07T08:00:00Z';
  expect(say('2026-12-07T13:00:00Z', now)).toBe('today 14:00');
  expect(say('2026-12-08T07:00:00Z', now)).toBe('tomorrow 08:00');
  expect(say('2026-12-06T20:00:00Z', now)).toBe('yesterday 21:00');
  expect(say('2026-12-10T08:00:00Z', now)).toBe('Thu 09:00');
  expect(say('2026-12-13T08:00:00Z', now)).toBe('Sun 09:00');
  expect(say('2026-12-14T08:00:00Z', now)).toBe('14 Dec 09:00');
  expect(say('2027-01-20T08:00:00Z', now)).toBe('20 Jan 2027 09:00');
});

it('counts days at the user’s midnight, not UTC’s', () => {
  // 23:30 on Monday in Berlin, 22:30 in UTC.
  const now = '2026-12-07T22:30:00Z';
  // 00:45 on Tuesday in Berlin, still Monday in UTC.
  expect(say('2026-12-07T23:45:00Z', now)).toBe('tomorrow 00:45');
  expect(say('2026-12-07T23:45:00Z', now, 'UTC')).toBe('today 23:45');
  // Just after midnight, the evening before is yesterday.
  expect(say('2026-12-07T21:00:00Z', '2026-12-07T23:30:00Z')).toBe('yesterday 22:00');
  expect(daysBetween(new Date(now), '2026-12-07T23:45:00Z', BERLIN)).toBe(1);
  expect(daysBetween(new Date(now), '2026-12-07T23:45:00Z', 'America/New_York')).toBe(0);
});

it('stays right across the end of summer time in Berlin (25 October 2026)', () => {
  // 02:30 CEST; the clocks then go back from 03:00 CEST to 02:00 CET.
  const beforeChange = '2026-10-25T00:30:00Z';
  // 02:15 CET is earlier on the wall clock but 45 minutes later.
  expect(say('2026-10-25T01:15:00Z', beforeChange)).toBe('in 45 min');
  // Saturday 22:00 CEST to Sunday 08:00 CET: tomorrow, eleven hours on.
  expect(say('2026-10-25T07:00:00Z', '2026-10-24T20:00:00Z')).toBe('tomorrow 08:00');
  // Sunday has 25 hours: from 00:10 CEST to 23:50 CET is 24 h 40 min, and still today.
  expect(say('2026-10-25T22:50:00Z', '2026-10-24T22:10:00Z')).toBe('today 23:50');
  // 23:30 CET on Sunday to 00:30 on Monday: an hour, and tomorrow.
  expect(say('2026-10-25T23:30:00Z', '2026-10-25T22:30:00Z')).toBe('tomorrow 00:30');
  // The two 02:30s of that night are told apart by their zone in the absolute form.
  expect(absoluteTime('2026-10-25T00:30:00Z', BERLIN, 'en-GB')).toMatch(/^Sunday,? 25 October 2026(,| at) 02:30 CEST$/);
  expect(absoluteTime('2026-10-25T01:30:00Z', BERLIN, 'en-GB')).toMatch(/02:30 CET$/);
});

it('writes 12-hour times for en-US and 24-hour times for en-GB and de-DE, in each one’s words', () => {
  const now = '2026-12-07T08:00:00Z';
  expect(twelveHour('en-US')).toBe(true);
  expect(twelveHour('en-GB')).toBe(false);
  expect(twelveHour('de-DE')).toBe(false);
  expect(say('2026-12-07T13:00:00Z', now, BERLIN, 'en-US')).toMatch(/^today 2:00\sPM$/);
  expect(say('2026-12-08T07:00:00Z', now, BERLIN, 'en-US')).toMatch(/^tomorrow 8:00\sAM$/);
  expect(say('2026-12-14T08:00:00Z', now, BERLIN, 'en-US')).toMatch(/^Dec 14 9:00\sAM$/);
  expect(say('2026-12-07T13:00:00Z', now, BERLIN, 'de-DE')).toBe('heute 14:00');
  expect(say('2026-12-08T07:00:00Z', now, BERLIN, 'de-DE')).toBe('morgen 08:00');
  expect(say('2026-12-07T08:20:00Z', now, BERLIN, 'de-DE')).toBe('in 20 Min.');
  expect(say('2026-12-07T07:55:00Z', now, BERLIN, 'de-DE')).toBe('vor 5 Min.');
  expect(say('2026-12-10T08:00:00Z', now, BERLIN, 'de-DE')).toMatch(/^Do\.? 09:00$/); // CLDR versions differ on the dot
  expect(clockTime('2026-12-07T23:05:00Z', BERLIN, 'en-GB')).toBe('00:05');
  expect(clockTime('2026-12-07T23:05:00Z', BERLIN, 'en-US')).toMatch(/^12:05\sAM$/);
  expect(absoluteTime('2026-12-07T13:00:00Z', BERLIN, 'en-US')).toMatch(/^Monday, December 7, 2026(,| at) 2:00\sPM GMT\+1$/);
});
