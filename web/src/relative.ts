// Times as people say them: "in 20 min", "5 min ago", "today 14:00", "tomorrow 08:00",
// "Mon 09:00", else a date. The day and the wall clock are those of the user's time zone (their
// profile's, or this browser's when the profile names none), so "tomorrow" means their
// tomorrow wherever the browser is; the shapes (12- or 24-hour, day and month order, names) are
// those of the browser's locale. Days are counted on the calendar, never as 24 hours, so a DST
// change does not shift "tomorrow". Pure functions of an explicit `now`, unit-tested.

import { translator } from './i18n';
import { dayKey } from './time';

/** Within this many minutes either way, a time is said in minutes. */
const MINUTES_SPAN = 60;
/** Up to this many days ahead, a time is said by its weekday. */
const WEEKDAY_SPAN = 6;

/** Whether the locale writes times with AM and PM. */
export function twelveHour(locale?: string): boolean {
  const cycle = new Intl.DateTimeFormat(locale, { hour: 'numeric' }).resolvedOptions().hourCycle;
  return cycle === 'h12' || cycle === 'h11';
}

/** The time of day on the wall clock of `timeZone`: `14:00`, `08:00` or `2:00 PM`, as the locale writes it. */
export function clockTime(instant: string, timeZone: string, locale?: string): string {
  // A 24-hour clock keeps its leading zero (`08:00`); a 12-hour one reads better without (`8:00 AM`).
  const hour = twelveHour(locale) ? 'numeric' : '2-digit';
  return new Intl.DateTimeFormat(locale, { hour, minute: '2-digit', timeZone }).format(new Date(instant));
}

/** Calendar days from `now`'s day to `instant`'s day, both in `timeZone` (negative: before). */
export function daysBetween(now: Date, instant: string, timeZone: string): number {
  const day = (key: string) => {
    const [y = 1970, m = 1, d = 1] = key.split('-').map(Number);
    return Date.UTC(y, m - 1, d);
  };
  return Math.round((day(dayKey(instant, timeZone)) - day(dayKey(now.toISOString(), timeZone))) / 86_400_000);
}

/** The instant said relative to `now`, in the user's zone and the browser's locale. */
export function relativeTime(instant: string, now: Date, timeZone: string, locale?: string): string {
  const { t } = translator(locale);
  const minutes = (Date.parse(instant) - now.getTime()) / 60_000;
  if (Math.abs(minutes) < 1) return t('relative.now');
  if (minutes > 0 && minutes < MINUTES_SPAN) return t('relative.inMinutes', { count: Math.round(minutes) });
  if (minutes < 0 && minutes > -MINUTES_SPAN) return t('relative.minutesAgo', { count: Math.round(-minutes) });
  const time = clockTime(instant, timeZone, locale);
  const days = daysBetween(now, instant, timeZone);
  if (days === 0) return t('relative.today', { time });
  if (days === 1) return t('relative.tomorrow', { time });
  if (days === -1) return t('relative.yesterday', { time });
  const at = new Date(instant);
  if (days > 1 && days <= WEEKDAY_SPAN) {
    return t('relative.onDay', { day: new Intl.DateTimeFormat(locale, { weekday: 'short', timeZone }).format(at), time });
  }
  const sameYear = dayKey(instant, timeZone).slice(0, 4) === dayKey(now.toISOString(), timeZone).slice(0, 4);
  const date = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', year: sameYear ? undefined : 'numeric', timeZone }).format(at);
  return t('relative.onDay', { day: date, time });
}

/** The instant in full, with its zone's abbreviation (which tells the two 02:30s of a DST
 * change apart): `Sunday, 25 October 2026 at 02:30 CET`. */
export function absoluteTime(instant: string, timeZone: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    hour: twelveHour(locale) ? 'numeric' : '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
    timeZone,
  }).format(new Date(instant));
}
