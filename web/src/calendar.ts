// The view model of Upcoming's week and month grids: which calendar days a week or a month
// shows, where the week starts (Monday in Germany, Sunday in the United States: the locale's
// CLDR week data), and how a focused day moves under the keys of the WAI-ARIA grid pattern.
// Days are calendar dates (`2026-12-07`) counted on the calendar, never as 24-hour steps of
// instants, so a DST change (a 23- or 25-hour day) cannot skip or repeat a day; which day an
// occurrence falls on is decided in the user's zone (time.ts `dayKey`). Pure, unit-tested.

/** 1 = Monday … 7 = Sunday, as ISO 8601 and Intl's week data number them. */
export type Weekday = 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** Regions whose weeks start on Sunday or Saturday (CLDR), for an engine without week data. */
const SUNDAY = new Set(['US', 'CA', 'MX', 'BR', 'JP', 'KR', 'TW', 'HK', 'IL', 'IN', 'PH', 'ZA', 'AU', 'SA', 'PE', 'CO', 'AR']);
const SATURDAY = new Set(['AE', 'AF', 'BH', 'DJ', 'DZ', 'EG', 'IQ', 'IR', 'JO', 'KW', 'LY', 'OM', 'QA', 'SD', 'SY']);

/** The first day of the week in `locale`: Intl's week data where the engine has it. */
export function firstDayOfWeek(locale: string): Weekday {
  try {
    const intl = new Intl.Locale(locale) as Intl.Locale & {
      getWeekInfo?: () => { firstDay: number };
      weekInfo?: { firstDay: number };
    };
    const info = intl.getWeekInfo?.() ?? intl.weekInfo;
    if (info && info.firstDay >= 1 && info.firstDay <= 7) return info.firstDay as Weekday;
    const region = intl.maximize().region ?? '';
    if (SUNDAY.has(region)) return 7;
    if (SATURDAY.has(region)) return 6;
  } catch {
    // Not a locale Intl knows: the ISO week.
  }
  return 1;
}

function parse(key: string): Date {
  return new Date(`${key}T00:00:00Z`);
}

function format(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** The calendar day `n` days after `key` (before, for a negative `n`). */
export function addDays(key: string, n: number): string {
  const d = parse(key);
  d.setUTCDate(d.getUTCDate() + n);
  return format(d);
}

/** The same day `n` months later, or that month's last day where it is shorter (31 January
 * and one month: 28 February). */
export function addMonths(key: string, n: number): string {
  const d = parse(key);
  const day = d.getUTCDate();
  const first = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  first.setUTCDate(Math.min(day, last));
  return format(first);
}

/** 1 = Monday … 7 = Sunday. */
export function weekdayOf(key: string): Weekday {
  return (((parse(key).getUTCDay() + 6) % 7) + 1) as Weekday;
}

/** The first day of the week that holds `key`. */
export function startOfWeek(key: string, firstDay: Weekday): string {
  return addDays(key, -((weekdayOf(key) - firstDay + 7) % 7));
}

export function startOfMonth(key: string): string {
  return `${key.slice(0, 8)}01`;
}

export function endOfMonth(key: string): string {
  return addDays(addMonths(startOfMonth(key), 1), -1);
}

export interface GridDay {
  key: string;
  /** In the month shown (a month grid shows the ends of its neighbours to fill its weeks). */
  inMonth: boolean;
  today: boolean;
  /** Before today: nothing is upcoming there. */
  past: boolean;
}

/** The seven days of the week that holds `key`. */
export function weekDays(key: string, firstDay: Weekday, today: string): GridDay[] {
  const start = startOfWeek(key, firstDay);
  return Array.from({ length: 7 }, (_, i) => {
    const day = addDays(start, i);
    return { key: day, inMonth: true, today: day === today, past: day < today };
  });
}

/** The whole weeks that hold the month of `key`, from its first day's week to its last's. */
export function monthWeeks(key: string, firstDay: Weekday, today: string): GridDay[][] {
  const first = startOfMonth(key);
  const last = endOfMonth(key);
  const month = key.slice(0, 7);
  const weeks: GridDay[][] = [];
  for (let start = startOfWeek(first, firstDay); start <= last; start = addDays(start, 7)) {
    weeks.push(weekDays(start, firstDay, today).map((d) => ({ ...d, inMonth: d.key.slice(0, 7) === month })));
  }
  return weeks;
}

/** Where a key moves the focused day in the grid, or undefined for a key the grid leaves alone.
 * Arrows move a day or a week; Home and End go to the ends of its week; Page Up and Page Down
 * a month (with Shift, a year), as the WAI-ARIA date grid does. */
export function moveFocus(key: string, day: string, firstDay: Weekday, shift = false): string | undefined {
  switch (key) {
    case 'ArrowLeft':
      return addDays(day, -1);
    case 'ArrowRight':
      return addDays(day, 1);
    case 'ArrowUp':
      return addDays(day, -7);
    case 'ArrowDown':
      return addDays(day, 7);
    case 'Home':
      return startOfWeek(day, firstDay);
    case 'End':
      return addDays(startOfWeek(day, firstDay), 6);
    case 'PageUp':
      return addMonths(day, shift ? -12 : -1);
    case 'PageDown':
      return addMonths(day, shift ? 12 : 1);
    default:
      return undefined;
  }
}
