// The task form's model: what the fields hold, the design's body they make, and which field a
// server error's JSON pointer belongs to. Pure functions, unit-tested without a browser.

import type { Task } from './api';
import { translator, weekdayNames, type MessageKey, type Translator } from './i18n';

export type Period = 'day' | 'week' | 'month' | 'year';
export type EndsMode = 'never' | 'after' | 'on';
export type MissedPolicy = 'fireOnceLate' | 'fireAll' | 'skip';
export type MonthMode = 'day' | 'last' | 'nth' | 'lastWeekday';
export const NTH_ORDINALS = ['1', '2', '3', '4', '-1'] as const;
export type NthOrdinal = (typeof NTH_ORDINALS)[number];

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface TaskForm {
  name: string;
  description: string;
  /** Wall-clock start in `timeZone`, as a datetime-local field holds it: `2026-12-07T09:00`. */
  start: string;
  timeZone: string;
  repeat: boolean;
  /** Repeats by the RFC 5545 rule typed in `rrule` instead of the fields below. */
  custom: boolean;
  rrule: string;
  frequency: string;
  period: Period;
  weekdays: Weekday[];
  /** Days of the month, the last day, the nth weekday (`nthOrdinal` `nthWeekday`: the 2nd
   * Tuesday, the last Friday) or the last weekday (Monday to Friday) of the month. */
  monthMode: MonthMode;
  monthDay: string;
  nthOrdinal: NthOrdinal;
  nthWeekday: Weekday;
  endsMode: EndsMode;
  endsCount: string;
  endsDate: string;
  emailOn: boolean;
  email: string;
  smsOn: boolean;
  sms: string;
  push: boolean;
  inApp: boolean;
  webhook: boolean;
  /** Ids of the user's destinations it also goes to. One the user has since removed stays here
   * until the form is saved, which drops it (`withoutRemoved`). */
  destinations: string[];
  /** Sent at once even inside the user's quiet hours. */
  urgent: boolean;
  /** Sent again until marked done: every `nagEveryMinutes`, at most `nagTimes` times. */
  nag: boolean;
  nagEveryMinutes: string;
  nagTimes: string;
  /** Channels held back until the occurrence is still not done after this many minutes
   * (`''`: sent at once). */
  escalate: Record<EscalationChannel, string>;
  missed: MissedPolicy;
  skipLimitMinutes: string;
  /** Occurrences skipped, moved or added from the task page, carried through an edit unchanged. */
  skipped: string[];
  moved: Array<{ from: string; to: string }>;
  added: string[];
  /** The zone follows the user's settings: the same local time wherever they are. */
  floating: boolean;
}

/** The channels an escalation step may use. */
export const ESCALATION_CHANNELS = ['sms', 'email', 'push', 'webhook'] as const;
export type EscalationChannel = (typeof ESCALATION_CHANNELS)[number];

/** The field ids of the form, which the JSON pointers of server errors map to. */
export type FieldId =
  | 'name'
  | 'description'
  | 'start'
  | 'timeZone'
  | 'frequency'
  | 'period'
  | 'weekdays'
  | 'monthDay'
  | 'rrule'
  | 'endsCount'
  | 'endsDate'
  | 'email'
  | 'sms'
  | 'push'
  | 'webhook'
  | 'destinations'
  | 'urgent'
  | 'floating'
  | 'nagEveryMinutes'
  | 'nagTimes'
  | 'escalate'
  | 'missed'
  | 'skipLimitMinutes'
  | 'form';

export function emptyForm(defaults: {
  timeZone: string;
  email?: string;
  sms?: string;
  /** The profile's default channels; in-app only when absent. */
  channels?: { email: boolean; sms: boolean; push: boolean; inApp: boolean; webhook: boolean };
  now?: Date;
}): TaskForm {
  const channels = defaults.channels ?? { email: false, sms: false, push: false, inApp: true, webhook: false };
  const now = defaults.now ?? new Date();
  // The next whole hour, in the chosen zone.
  const next = new Date(now.getTime() + 3600_000);
  next.setUTCMinutes(0, 0, 0);
  return {
    name: '',
    description: '',
    start: wallClock(next.toISOString(), defaults.timeZone),
    timeZone: defaults.timeZone,
    repeat: false,
    custom: false,
    rrule: '',
    frequency: '1',
    period: 'week',
    weekdays: [],
    monthMode: 'day',
    monthDay: '',
    nthOrdinal: '1',
    nthWeekday: 'monday',
    endsMode: 'never',
    endsCount: '10',
    endsDate: '',
    emailOn: channels.email,
    email: defaults.email ?? '',
    smsOn: channels.sms,
    sms: defaults.sms ?? '',
    push: channels.push,
    inApp: channels.inApp,
    webhook: channels.webhook,
    destinations: [],
    urgent: false,
    nag: false,
    nagEveryMinutes: '10',
    nagTimes: '3',
    escalate: { sms: '', email: '', push: '', webhook: '' },
    missed: 'fireOnceLate',
    skipLimitMinutes: '60',
    skipped: [],
    moved: [],
    added: [],
    floating: false,
  };
}

/** `2026-12-07T09:00` for an instant, on the wall clock of `timeZone`. */
export function wallClock(instant: string, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(instant));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00';
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}`;
}

/** The design's body for the task API (the BFF resolves the local `startDate` in `timeZone`). */
export function toBody(form: TaskForm): Record<string, unknown> {
  const notify: Record<string, unknown> = {
    email: form.emailOn ? form.email : '',
    sms: form.smsOn ? form.sms : '',
    push: form.push,
    inApp: form.inApp,
    webhook: form.webhook,
  };
  // Absent means none, as the API answers it.
  if (form.destinations.length > 0) notify.destinations = form.destinations;
  const body: Record<string, unknown> = {
    name: form.name,
    startDate: form.start,
    timeZone: form.timeZone,
    notify,
    urgent: form.urgent,
    nag: form.nag ? { everyMinutes: wholeNumber(form.nagEveryMinutes), times: wholeNumber(form.nagTimes) } : null,
    escalate: escalationSteps(form),
    missed:
      form.missed === 'skip'
        ? { policy: 'skip', limitSeconds: minutesToSeconds(form.skipLimitMinutes) }
        : { policy: form.missed },
  };
  if (form.description.trim()) body.description = form.description;
  if (form.skipped.length > 0) body.skipped = form.skipped;
  if (form.moved.length > 0) body.moved = form.moved;
  if (form.added.length > 0) body.added = form.added;
  if (form.floating) body.floating = true;
  const rule = ruleOnly(form);
  if (form.repeat && rule !== undefined) {
    body.repeats = { rrule: rule };
  } else if (form.repeat) {
    const repeats: Record<string, unknown> = { frequency: form.frequency, period: form.period };
    if (form.period === 'week' && form.weekdays.length > 0) {
      repeats.on = WEEKDAYS.filter((d) => form.weekdays.includes(d)).join(', ');
    }
    if (form.period === 'month') {
      if (form.monthMode === 'last') repeats.on = 'last';
      else if (form.monthDay.trim()) repeats.on = form.monthDay.trim();
    }
    if (form.endsMode === 'after') repeats.ends = form.endsCount;
    if (form.endsMode === 'on') repeats.ends = form.endsDate;
    body.repeats = repeats;
  }
  return body;
}

/** Whether the form notifies on `channel`. */
export function notifiesOn(form: TaskForm, channel: EscalationChannel): boolean {
  return { sms: form.smsOn, email: form.emailOn, push: form.push, webhook: form.webhook }[channel];
}

/** The escalation steps of the form, earliest first: each channel it notifies on with a delay. */
function escalationSteps(form: TaskForm): Array<{ afterMinutes: number | string; channel: EscalationChannel }> {
  return ESCALATION_CHANNELS.filter((c) => notifiesOn(form, c) && form.escalate[c].trim() !== '')
    .map((channel) => ({ afterMinutes: wholeNumber(form.escalate[channel]), channel }))
    .sort((a, b) => Number(a.afterMinutes) - Number(b.afterMinutes));
}

/** A whole number as the server reads it, or the text as typed (the server names it). */
function wholeNumber(text: string): number | string {
  const n = Number(text);
  return Number.isInteger(n) && text.trim() !== '' ? n : text;
}

function minutesToSeconds(minutes: string): number | string {
  const n = Number(minutes);
  return Number.isFinite(n) && minutes.trim() !== '' ? Math.round(n * 60) : minutes;
}

/** The form for an existing task. */
export function fromTask(task: Task, defaults: { email?: string; sms?: string }): TaskForm {
  const form = emptyForm({ timeZone: task.timeZone, ...defaults });
  form.name = task.name;
  form.description = task.description ?? '';
  form.start = wallClock(task.startDate, task.timeZone);
  form.emailOn = Boolean(task.notify.email);
  form.email = task.notify.email ?? defaults.email ?? '';
  form.smsOn = Boolean(task.notify.sms);
  form.sms = task.notify.sms ?? defaults.sms ?? '';
  form.push = task.notify.push;
  form.inApp = task.notify.inApp;
  form.webhook = task.notify.webhook;
  form.destinations = task.notify.destinations ?? [];
  form.urgent = task.urgent ?? false;
  if (task.nag) {
    form.nag = true;
    form.nagEveryMinutes = String(task.nag.everyMinutes);
    form.nagTimes = String(task.nag.times);
  }
  for (const step of task.escalate ?? []) form.escalate[step.channel] = String(step.afterMinutes);
  form.skipped = task.skipped ?? [];
  form.moved = task.moved ?? [];
  form.added = task.added ?? [];
  form.floating = task.floating ?? false;
  form.missed = task.missed.policy;
  if (task.missed.limitSeconds !== undefined) form.skipLimitMinutes = String(task.missed.limitSeconds / 60);
  const r = task.repeats;
  if (r && 'rrule' in r) {
    form.repeat = true;
    readRule(form, r.rrule);
  } else if (r) {
    form.repeat = true;
    form.frequency = String(r.frequency);
    form.period = r.period;
    if (r.period === 'week' && r.on) form.weekdays = r.on.map(String).filter(isWeekday);
    if (r.period === 'month' && r.on && r.on.length > 0) {
      if (r.on.length === 1 && Number(r.on[0]) === -1) form.monthMode = 'last';
      else form.monthDay = r.on.join(', ');
    }
    if (typeof r.ends === 'number') {
      form.endsMode = 'after';
      form.endsCount = String(r.ends);
    } else if (typeof r.ends === 'string' && r.ends) {
      form.endsMode = 'on';
      form.endsDate = r.ends.slice(0, 10);
    }
  }
  return form;
}

function isWeekday(s: string): s is Weekday {
  return (WEEKDAYS as readonly string[]).includes(s);
}

/** The form field a server error's JSON pointer names. */
export function fieldOf(pointer: string, form: Pick<TaskForm, 'period' | 'endsMode'>): FieldId {
  const exact: Record<string, FieldId> = {
    '/name': 'name',
    '/description': 'description',
    '/startDate': 'start',
    '/timeZone': 'timeZone',
    '/repeats/frequency': 'frequency',
    '/repeats/period': 'period',
    '/repeats/rrule': 'rrule',
    '/notify/email': 'email',
    '/notify/sms': 'sms',
    '/notify/push': 'push',
    '/notify/webhook': 'webhook',
    '/urgent': 'urgent',
    '/floating': 'floating',
    '/nag': 'nagEveryMinutes',
    '/nag/everyMinutes': 'nagEveryMinutes',
    '/nag/times': 'nagTimes',
    '/missed/policy': 'missed',
    '/missed/limitSeconds': 'skipLimitMinutes',
  };
  if (pointer in exact) return exact[pointer]!;
  if (pointer.startsWith('/escalate')) return 'escalate';
  if (pointer.startsWith('/notify/destinations')) return 'destinations';
  if (pointer.startsWith('/repeats/on')) return form.period === 'week' ? 'weekdays' : 'monthDay';
  if (pointer.startsWith('/repeats/ends')) return form.endsMode === 'on' ? 'endsDate' : 'endsCount';
  return 'form';
}

/** Server errors by form field (the first message per field wins). */
export function errorsByField(
  byPointer: Record<string, string>,
  form: Pick<TaskForm, 'period' | 'endsMode'>,
): Partial<Record<FieldId, string>> {
  const out: Partial<Record<FieldId, string>> = {};
  for (const [pointer, detail] of Object.entries(byPointer)) {
    const field = fieldOf(pointer, form);
    if (!(field in out)) out[field] = detail;
  }
  return out;
}

/** The form's destinations the user no longer has (removed in Settings since the task was
 * saved), given the ones they have. */
export function removedDestinations(form: Pick<TaskForm, 'destinations'>, known: ReadonlyArray<{ id: string }>): string[] {
  return form.destinations.filter((id) => !known.some((d) => d.id === id));
}

/** The form as saving sends it: without destinations the user no longer has. `known` is
 * `undefined` when their list could not be read: then nothing is dropped (the server names
 * an unknown id, rather than the app losing a choice it could not check). */
export function withoutRemoved(form: TaskForm, known: ReadonlyArray<{ id: string }> | undefined): TaskForm {
  if (!known) return form;
  const removed = removedDestinations(form, known);
  return removed.length === 0 ? form : { ...form, destinations: form.destinations.filter((id) => !removed.includes(id)) };
}

/** The destinations chosen after ticking (`on`) or clearing `id`: in the order the user's
 * list has them, with any removed one kept until saving drops it. */
export function chooseDestination(
  form: Pick<TaskForm, 'destinations'>,
  id: string,
  on: boolean,
  known: ReadonlyArray<{ id: string }>,
): string[] {
  const listed = known.filter((d) => (d.id === id ? on : form.destinations.includes(d.id))).map((d) => d.id);
  return [...listed, ...removedDestinations(form, known)];
}

/** What a telemetry event may say about a saved task: its kind, never its content. */
export function taskVariant(form: TaskForm): string {
  if (!form.repeat) return 'once';
  return form.custom ? 'repeating_rule' : `repeating_${form.period}`;
}

/** Channels chosen, for telemetry (names only). */
export function channelsChosen(form: TaskForm): string[] {
  const out: string[] = [];
  if (form.emailOn) out.push('email');
  if (form.smsOn) out.push('sms');
  if (form.push) out.push('push');
  if (form.inApp) out.push('inApp');
  if (form.webhook) out.push('webhook');
  return out;
}

/** `a`, `a and b`, `a, b and c`, in the catalogue's words (no serial comma, as the app writes). */
export function joinAnd(items: string[], t: Translator['t']): string {
  if (items.length < 2) return items.join('');
  return `${items.slice(0, -1).join(t('list.comma'))}${t('list.and')}${items.at(-1)}`;
}

const EVERY: Record<Period, MessageKey> = { day: 'rule.everyDay', week: 'rule.everyWeek', month: 'rule.everyMonth', year: 'rule.everyYear' };
const EVERY_N: Record<Period, MessageKey> = { day: 'rule.everyNDays', week: 'rule.everyNWeeks', month: 'rule.everyNMonths', year: 'rule.everyNYears' };
const ALONE: Record<Period, MessageKey> = { day: 'summary.daily', week: 'summary.weekly', month: 'summary.monthly', year: 'summary.yearly' };
const ORDINAL: Record<NthOrdinal, MessageKey> = {
  '1': 'rule.ordinal1',
  '2': 'rule.ordinal2',
  '3': 'rule.ordinal3',
  '4': 'rule.ordinal4',
  '-1': 'rule.ordinalLast',
};

/** A weekday's name in the locale (`Monday`, `Montag`). */
function dayName(day: Weekday, locale: string): string {
  return weekdayNames(locale, 'long')[WEEKDAYS.indexOf(day)] ?? day;
}

/**
 * The pattern in words, in the locale's language: a sentence for the form ("Every 2 weeks on
 * Monday and Wednesday, 10 times"), or a `summary` for a list's row ("every 2 weeks on Monday
 * and Wednesday", "daily", "every Monday"). A typed rule is said as the rule.
 */
export function describe(form: TaskForm, locale: string = 'en', summary = false): string {
  const { t } = translator(locale);
  if (!form.repeat) return t('rule.once');
  if (form.custom) return t(summary ? 'summary.byRule' : 'rule.byRule', { rule: form.rrule.trim() });
  const n = Number(form.frequency) || 1;
  const days = form.period === 'week' ? WEEKDAYS.filter((d) => form.weekdays.includes(d)).map((d) => dayName(d, locale)) : [];
  let text: string;
  if (summary && n === 1) {
    text = days.length > 0 ? t('summary.everyDays', { days: joinAnd(days, t) }) : t(ALONE[form.period]);
  } else {
    text = n === 1 ? t(EVERY[form.period]) : t(EVERY_N[form.period], { count: n });
    // A row's words start lower case (`every 2 weeks`), the form's sentence upper.
    if (summary) text = text.replace(/^./, (c) => c.toLocaleLowerCase(locale));
    if (days.length > 0) text += t('rule.onDays', { days: joinAnd(days, t) });
  }
  if (form.period === 'month') {
    if (form.monthMode === 'last') text += t('rule.onLastDay');
    else if (form.monthMode === 'lastWeekday') text += t('rule.onLastWeekday');
    else if (form.monthMode === 'nth') text += t('rule.onNth', { ordinal: t(ORDINAL[form.nthOrdinal]), day: dayName(form.nthWeekday, locale) });
    else if (form.monthDay.trim()) text += t('rule.onMonthDay', { days: form.monthDay.trim() });
  }
  if (form.endsMode === 'after') text += t('rule.times', { count: Number(form.endsCount) || 0 });
  if (form.endsMode === 'on' && form.endsDate) text += t('rule.until', { date: form.endsDate });
  return text;
}

const RULE_DAYS: Record<Weekday, string> = {
  monday: 'MO',
  tuesday: 'TU',
  wednesday: 'WE',
  thursday: 'TH',
  friday: 'FR',
  saturday: 'SA',
  sunday: 'SU',
};

/** The rule's end: `COUNT=n` or `UNTIL=YYYYMMDD` (a last local date), as the server prints them. */
function ruleEnd(form: TaskForm): string {
  if (form.endsMode === 'after') return `;COUNT=${form.endsCount.trim()}`;
  if (form.endsMode === 'on' && form.endsDate) return `;UNTIL=${form.endsDate.replaceAll('-', '')}`;
  return '';
}

/** The rule the form sends as `repeats.rrule`, when the design's fields cannot say it: a typed
 * rule, the nth weekday or the last weekday of the month. `undefined` for the design's fields. */
export function ruleOnly(form: TaskForm): string | undefined {
  if (!form.repeat) return undefined;
  if (form.custom) return form.rrule.trim();
  if (form.period !== 'month' || (form.monthMode !== 'nth' && form.monthMode !== 'lastWeekday')) return undefined;
  const n = Number(form.frequency);
  const interval = Number.isInteger(n) && n > 1 ? `;INTERVAL=${n}` : '';
  const days = form.monthMode === 'nth' ? `BYDAY=${form.nthOrdinal}${RULE_DAYS[form.nthWeekday]}` : 'BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1';
  return `FREQ=MONTHLY${interval}${ruleEnd(form)};${days}`;
}

/** The form's pattern as an RFC 5545 rule, in the server's canonical form (parts in its
 * order, defaults left out), shown under the pattern so people can learn the one form that
 * calendars share. `undefined` for a one-time task. */
export function ruleOf(form: TaskForm): string | undefined {
  if (!form.repeat) return undefined;
  const only = ruleOnly(form);
  if (only !== undefined) return only;
  const freq = { day: 'DAILY', week: 'WEEKLY', month: 'MONTHLY', year: 'YEARLY' }[form.period];
  const n = Number(form.frequency);
  let rule = `FREQ=${freq}${Number.isInteger(n) && n > 1 ? `;INTERVAL=${n}` : ''}${ruleEnd(form)}`;
  if (form.period === 'week' && form.weekdays.length > 0) {
    rule += `;BYDAY=${WEEKDAYS.filter((d) => form.weekdays.includes(d)).map((d) => RULE_DAYS[d]).join(',')}`;
  }
  if (form.period === 'month' && form.monthMode === 'last') rule += ';BYMONTHDAY=-1';
  if (form.period === 'month' && form.monthMode === 'day' && form.monthDay.trim()) {
    const days = form.monthDay.split(/[\s,]+/).filter(Boolean).map((d) => (d.toLowerCase() === 'last' ? '-1' : d));
    rule += `;BYMONTHDAY=${days.join(',')}`;
  }
  return rule;
}

/** A rule's period, INTERVAL and COUNT or UNTIL (a date, `2027-12-31`) into the form. */
function readPeriod(form: TaskForm, period: Period, interval?: string, count?: string, until?: string): void {
  form.period = period;
  form.frequency = interval ?? '1';
  if (count) {
    form.endsMode = 'after';
    form.endsCount = count;
  } else if (until) {
    form.endsMode = 'on';
    form.endsDate = until;
  }
}

/** Reads a saved task's rule into the form: the month patterns the form builds come back as
 * those patterns, any other rule as a custom one. */
function readRule(form: TaskForm, rule: string): void {
  // The design's patterns (a rule from quick add or the API): read into the form's fields.
  const plain = /^FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(?:;INTERVAL=(\d+))?(?:;COUNT=(\d+)|;UNTIL=(\d{4})(\d{2})(\d{2}))?(?:;BYDAY=((?:MO|TU|WE|TH|FR|SA|SU)(?:,(?:MO|TU|WE|TH|FR|SA|SU))*))?(?:;BYMONTHDAY=(-1|\d{1,2}(?:,\d{1,2})*))?$/.exec(rule);
  if (plain) {
    const [, freq, interval, count, y, m, d, days, monthDays] = plain;
    const periods: Record<string, Period> = { DAILY: 'day', WEEKLY: 'week', MONTHLY: 'month', YEARLY: 'year' };
    const period = periods[freq ?? ''] ?? 'day';
    if ((!days || period === 'week') && (!monthDays || period === 'month')) {
      readPeriod(form, period, interval, count, y && `${y}-${m}-${d}`);
      if (days) form.weekdays = WEEKDAYS.filter((w) => days.split(',').includes(RULE_DAYS[w]));
      if (monthDays === '-1') form.monthMode = 'last';
      else if (monthDays) form.monthDay = monthDays.split(',').join(', ');
      return;
    }
  }
  const month = /^FREQ=MONTHLY(?:;INTERVAL=(\d+))?(?:;COUNT=(\d+)|;UNTIL=(\d{4})(\d{2})(\d{2}))?;BYDAY=(?:([1-4]|-1)(MO|TU|WE|TH|FR|SA|SU)|(MO,TU,WE,TH,FR;BYSETPOS=-1))$/.exec(rule);
  if (!month) {
    form.custom = true;
    form.rrule = rule;
    return;
  }
  const [, interval, count, y, m, d, ordinal, day, lastWeekday] = month;
  readPeriod(form, 'month', interval, count, y && `${y}-${m}-${d}`);
  if (lastWeekday) {
    form.monthMode = 'lastWeekday';
  } else {
    form.monthMode = 'nth';
    form.nthOrdinal = ordinal as NthOrdinal;
    form.nthWeekday = WEEKDAYS.find((w) => RULE_DAYS[w] === day) ?? 'monday';
  }
}
