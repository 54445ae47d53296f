// Dates for people: in the user's time zone, grouped by day, in the user's locale.

import { translator } from './i18n';

export function dayKey(instant: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(
    new Date(instant),
  );
}

export function dayLabel(key: string, timeZone: string, now: Date = new Date(), locale?: string): string {
  const today = dayKey(now.toISOString(), timeZone);
  const tomorrow = dayKey(new Date(now.getTime() + 86_400_000).toISOString(), timeZone);
  const { t } = translator(locale);
  if (key === today) return t('time.today');
  if (key === tomorrow) return t('time.tomorrow');
  // Noon UTC of that calendar day names the right weekday in any zone.
  return new Intl.DateTimeFormat(locale, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(
    new Date(`${key}T12:00:00Z`),
  );
}

export function timeOf(instant: string, timeZone: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', timeZone }).format(new Date(instant));
}

export function dateTime(instant: string, timeZone: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(new Date(instant));
}

/** Items grouped by their day in `timeZone`, in order. */
export function groupByDay<T>(items: T[], at: (item: T) => string, timeZone: string): Array<{ day: string; items: T[] }> {
  const groups: Array<{ day: string; items: T[] }> = [];
  for (const item of items) {
    const day = dayKey(at(item), timeZone);
    const last = groups.at(-1);
    if (last && last.day === day) last.items.push(item);
    else groups.push({ day, items: [item] });
  }
  return groups;
}

/** The UTC offset of `timeZone` at `instant`, in minutes east of UTC. */
function offsetMinutes(instant: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(instant);
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return Math.round((wall - Math.floor(instant.getTime() / 1000) * 1000) / 60_000);
}

/**
 * The instant of `hour`:00 on the day after `now`'s day in `timeZone` ("tomorrow morning"),
 * as RFC 3339 UTC. A wall time that a DST gap skips comes out an hour later, as the server's
 * recurrence moves it.
 */
export function tomorrowAt(hour: number, timeZone: string, now: Date = new Date()): string {
  const [y = 1970, m = 1, d = 1] = dayKey(now.toISOString(), timeZone).split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d + 1, hour, 0, 0);
  // The zone's offset near that wall time; a second pass settles a DST change between.
  let at = wall - offsetMinutes(new Date(wall), timeZone) * 60_000;
  at = wall - offsetMinutes(new Date(at), timeZone) * 60_000;
  return new Date(at).toISOString().replace('.000Z', 'Z');
}
