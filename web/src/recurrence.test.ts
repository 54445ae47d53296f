import { describe as suite, expect, it } from 'vitest';
import type { Task } from './api';
import {
  chooseDestination,
  describe,
  emptyForm,
  errorsByField,
  fieldOf,
  fromTask,
  removedDestinations,
  ruleOf,
  taskVariant,
  toBody,
  wallClock,
  withoutRemoved,
} from './recurrence';

/** A saved task that repeats by `rrule`, as the API answers it. */
const ruleTask = (rrule: string): Task => ({
  id: 'tsk_1',
  name: 'Book club',
  description: null,
  startDate: '2027-01-12T17:00:00Z',
  timeZone: 'Europe/Berlin',
  repeats: { rrule },
  notify: { email: null, sms: null, push: false, inApp: true, webhook: false },
  missed: { policy: 'fireOnceLate' },
  nextExecutionDate: null,
  createdAt: '',
  modifiedAt: '',
});

const base = () => ({ ...emptyForm({ timeZone: 'Europe/Berlin', now: new Date('2026-12-01T08:30:00Z') }), name: 'Stand-up' });

suite('the recurrence form', () => {
  it('starts at the next whole hour on the wall clock of the chosen zone', () => {
    expect(base().start).toBe('2026-12-01T10:00');
  });

  it('makes a one-time body without repeats', () => {
    const body = toBody({ ...base(), start: '2026-12-07T09:00' });
    expect(body).toMatchObject({ name: 'Stand-up', startDate: '2026-12-07T09:00', timeZone: 'Europe/Berlin' });
    expect(body).not.toHaveProperty('repeats');
    expect(body.notify).toEqual({ email: '', sms: '', push: false, inApp: true, webhook: false });
  });

  it('makes the design’s weekly body with weekdays in calendar order and a count', () => {
    const body = toBody({ ...base(), repeat: true, period: 'week', frequency: '2', weekdays: ['wednesday', 'monday'], endsMode: 'after', endsCount: '12' });
    expect(body.repeats).toEqual({ frequency: '2', period: 'week', on: 'monday, wednesday', ends: '12' });
  });

  it('says last for the last day of the month and passes an end date through', () => {
    const body = toBody({ ...base(), repeat: true, period: 'month', monthMode: 'last', endsMode: 'on', endsDate: '2027-06-30' });
    expect(body.repeats).toEqual({ frequency: '1', period: 'month', on: 'last', ends: '2027-06-30' });
  });

  it('sends an address only for a ticked channel', () => {
    const body = toBody({ ...base(), email: 'a@example.com', sms: '+14075551212', smsOn: true });
    expect(body.notify).toMatchObject({ email: '', sms: '+14075551212' });
  });

  it('turns the skip limit into seconds', () => {
    expect(toBody({ ...base(), missed: 'skip', skipLimitMinutes: '90' }).missed).toEqual({ policy: 'skip', limitSeconds: 5400 });
    expect(toBody({ ...base(), missed: 'fireAll' }).missed).toEqual({ policy: 'fireAll' });
  });

  it('maps server pointers to the field they name, by the period and end mode in use', () => {
    expect(fieldOf('/startDate', base())).toBe('start');
    expect(fieldOf('/repeats/on', { period: 'week', endsMode: 'never' })).toBe('weekdays');
    expect(fieldOf('/repeats/on/1', { period: 'month', endsMode: 'never' })).toBe('monthDay');
    expect(fieldOf('/repeats/ends', { period: 'week', endsMode: 'on' })).toBe('endsDate');
    expect(fieldOf('/repeats/ends', { period: 'week', endsMode: 'after' })).toBe('endsCount');
    expect(fieldOf('/something/else', base())).toBe('form');
    expect(errorsByField({ '/name': 'empty', '/notify/email': 'bad' }, base())).toEqual({ name: 'empty', email: 'bad' });
  });

  it('reads a saved task back into the form on its own wall clock', () => {
    const task: Task = {
      id: 'tsk_1',
      name: 'Rent',
      description: null,
      startDate: '2027-01-31T08:00:00Z',
      timeZone: 'Europe/Berlin',
      repeats: { frequency: 1, period: 'month', on: [-1], ends: 12 },
      notify: { email: 'me@example.com', sms: null, push: false, inApp: true, webhook: false },
      missed: { policy: 'skip', limitSeconds: 3600 },
      nextExecutionDate: null,
      createdAt: '',
      modifiedAt: '',
    };
    const form = fromTask(task, {});
    expect(form.start).toBe('2027-01-31T09:00');
    expect(form).toMatchObject({ repeat: true, period: 'month', monthMode: 'last', endsMode: 'after', endsCount: '12', emailOn: true, missed: 'skip', skipLimitMinutes: '60' });
    expect(toBody(form).repeats).toEqual({ frequency: '1', period: 'month', on: 'last', ends: '12' });
  });

  it('describes the pattern in words and reports only its kind to telemetry', () => {
    const form = { ...base(), repeat: true, period: 'week' as const, frequency: '2', weekdays: ['monday' as const, 'friday' as const], endsMode: 'after' as const, endsCount: '5' };
    expect(describe(form)).toBe('Every 2 weeks on Monday and Friday, 5 times');
    expect(taskVariant(form)).toBe('repeating_week');
    expect(taskVariant(base())).toBe('once');
  });

  it('sends the nth and the last weekday of the month as a rule, and reads them back', () => {
    const second = { ...base(), repeat: true, period: 'month' as const, monthMode: 'nth' as const, nthOrdinal: '2' as const, nthWeekday: 'tuesday' as const };
    expect(toBody(second).repeats).toEqual({ rrule: 'FREQ=MONTHLY;BYDAY=2TU' });
    expect(describe(second)).toBe('Every month on the second Tuesday');
    const lastWeekday = { ...base(), repeat: true, period: 'month' as const, frequency: '3', monthMode: 'lastWeekday' as const, endsMode: 'on' as const, endsDate: '2027-12-31' };
    expect(toBody(lastWeekday).repeats).toEqual({ rrule: 'FREQ=MONTHLY;INTERVAL=3;UNTIL=20271231;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1' });
    expect(describe(lastWeekday)).toBe('Every 3 months on the last weekday, until 2027-12-31');
    expect(fromTask(ruleTask('FREQ=MONTHLY;COUNT=6;BYDAY=-1FR'), {})).toMatchObject({ period: 'month', monthMode: 'nth', nthOrdinal: '-1', nthWeekday: 'friday', endsMode: 'after', endsCount: '6', custom: false });
    expect(toBody(fromTask(ruleTask('FREQ=MONTHLY;INTERVAL=3;UNTIL=20271231;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1'), {})).repeats).toEqual({
      rrule: 'FREQ=MONTHLY;INTERVAL=3;UNTIL=20271231;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1',
    });
    // Any other rule is a custom one, sent back as it came.
    const custom = fromTask(ruleTask('FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17'), {});
    expect(custom).toMatchObject({ repeat: true, custom: true });
    expect(toBody(custom).repeats).toEqual({ rrule: 'FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17' });
    expect(describe(custom)).toBe('By the rule FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17');
    expect(taskVariant(custom)).toBe('repeating_rule');
    expect(fieldOf('/repeats/rrule', custom)).toBe('rrule');
  });

  it('reads a rule in the design’s patterns back into the form’s fields', () => {
    const payroll = fromTask(ruleTask('FREQ=WEEKLY;INTERVAL=2;BYDAY=FR'), {});
    expect(payroll).toMatchObject({ custom: false, period: 'week', frequency: '2', weekdays: ['friday'] });
    expect(describe(payroll)).toBe('Every 2 weeks on Friday');
    expect(ruleOf(payroll)).toBe('FREQ=WEEKLY;INTERVAL=2;BYDAY=FR');
    expect(fromTask(ruleTask('FREQ=MONTHLY;UNTIL=20271231;BYMONTHDAY=-1'), {})).toMatchObject({ custom: false, monthMode: 'last', endsMode: 'on', endsDate: '2027-12-31' });
    expect(fromTask(ruleTask('FREQ=DAILY;COUNT=10'), {})).toMatchObject({ custom: false, period: 'day', endsMode: 'after', endsCount: '10' });
    // What the fields cannot say stays a custom rule.
    expect(fromTask(ruleTask('FREQ=DAILY;BYDAY=MO'), {}).custom).toBe(true);
    expect(fromTask(ruleTask('FREQ=HOURLY;INTERVAL=2'), {}).custom).toBe(true);
    expect(fromTask(ruleTask('FREQ=WEEKLY;BYDAY=1MO'), {}).custom).toBe(true);
  });

  it('carries skipped and moved occurrences through an edit', () => {
    const task: Task = {
      id: 'tsk_1',
      name: 'Gym',
      description: null,
      startDate: '2027-01-11T17:00:00Z',
      timeZone: 'Europe/Berlin',
      repeats: { frequency: 1, period: 'day', on: null, ends: null },
      notify: { email: null, sms: null, push: false, inApp: true, webhook: false },
      missed: { policy: 'fireOnceLate' },
      nextExecutionDate: null,
      createdAt: '',
      modifiedAt: '',
      skipped: ['2027-01-12T17:00:00Z'],
      moved: [{ from: '2027-01-13T17:00:00Z', to: '2027-01-13T19:00:00Z' }],
    };
    const body = toBody({ ...fromTask(task, {}), name: 'Gym, renamed' });
    expect(body.skipped).toEqual(['2027-01-12T17:00:00Z']);
    expect(body.moved).toEqual([{ from: '2027-01-13T17:00:00Z', to: '2027-01-13T19:00:00Z' }]);
    expect(toBody(base())).not.toHaveProperty('skipped');
  });

  it('shows the design’s fields as the rule the server answers with', () => {
    const weekly = { ...base(), repeat: true, period: 'week' as const, weekdays: ['tuesday' as const, 'monday' as const], endsMode: 'after' as const, endsCount: '12' };
    // The server's canonical form of the same task (see the API test): FREQ=WEEKLY;COUNT=12;BYDAY=MO,TU.
    expect(ruleOf(weekly)).toBe('FREQ=WEEKLY;COUNT=12;BYDAY=MO,TU');
    expect(ruleOf({ ...base(), repeat: true, period: 'month', monthMode: 'last', frequency: '2' })).toBe('FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=-1');
    expect(ruleOf({ ...base(), repeat: true, period: 'month', monthDay: '1, 15' })).toBe('FREQ=MONTHLY;BYMONTHDAY=1,15');
    expect(ruleOf(base())).toBeUndefined();
  });

  it('shows an instant on the wall clock across DST', () => {
    expect(wallClock('2026-03-29T01:30:00Z', 'Europe/Berlin')).toBe('2026-03-29T03:30');
    expect(wallClock('2026-03-28T01:30:00Z', 'Europe/Berlin')).toBe('2026-03-28T02:30');
  });
});

it('sends a nag only when asked, and reads it back from a task', () => {
  const form = emptyForm({ timeZone: 'Europe/Berlin' });
  expect(toBody(form).nag).toBeNull();
  const body = toBody({ ...form, nag: true, nagEveryMinutes: '15', nagTimes: '4' });
  expect(body.nag).toEqual({ everyMinutes: 15, times: 4 });
  // A value the server refuses goes as typed, for it to name.
  expect(toBody({ ...form, nag: true, nagEveryMinutes: 'soon', nagTimes: '4' }).nag).toEqual({ everyMinutes: 'soon', times: 4 });
  expect(fieldOf('/nag/times', form)).toBe('nagTimes');
});

it('sends escalation steps earliest first for the channels it notifies on, and reads them back', () => {
  const form = {
    ...emptyForm({ timeZone: 'Europe/Berlin' }),
    smsOn: true,
    sms: '+14075551212',
    emailOn: true,
    email: 'me@example.com',
    push: true,
  };
  expect(toBody(form).escalate).toEqual([]);
  const body = toBody({ ...form, escalate: { sms: '5', email: '2', push: '', webhook: '30' } });
  // Webhook is not a channel of this task: its delay is not sent; push goes at once.
  expect(body.escalate).toEqual([
    { afterMinutes: 2, channel: 'email' },
    { afterMinutes: 5, channel: 'sms' },
  ]);
  const task = {
    id: 'tsk_1',
    name: 'n',
    description: null,
    startDate: '2030-01-01T09:00:00Z',
    timeZone: 'Europe/Berlin',
    repeats: null,
    notify: { email: 'me@example.com', sms: '+14075551212', push: true, inApp: true, webhook: false },
    escalate: [{ afterMinutes: 1, channel: 'sms' as const }],
    missed: { policy: 'fireOnceLate' as const },
    nextExecutionDate: null,
    createdAt: '2030-01-01T00:00:00Z',
    modifiedAt: '2030-01-01T00:00:00Z',
  };
  expect(fromTask(task, {}).escalate).toEqual({ sms: '1', email: '', push: '', webhook: '' });
  expect(fieldOf('/escalate/0/channel', form)).toBe('escalate');
});

suite('destinations in the task form', () => {
  const phone = { id: 'dst_phone', name: 'Phone', channel: 'ntfy' as const };
  const team = { id: 'dst_team', name: 'Team', channel: 'slack' as const };
  const task = (destinations?: string[]): Task => ({
    ...ruleTask('FREQ=DAILY'),
    notify: { email: null, sms: null, push: false, inApp: true, webhook: false, ...(destinations ? { destinations } : {}) },
  });

  it('sends no destinations when none is chosen, as the API answers a task without them', () => {
    expect(emptyForm({ timeZone: 'UTC' }).destinations).toEqual([]);
    expect(toBody(emptyForm({ timeZone: 'UTC' })).notify).not.toHaveProperty('destinations');
    expect(fromTask(task(), {}).destinations).toEqual([]);
  });

  it('sends the chosen destinations in notify and reads a task’s back into the form', () => {
    const form = fromTask(task(['dst_team', 'dst_phone']), {});
    expect(form.destinations).toEqual(['dst_team', 'dst_phone']);
    expect(toBody(form).notify).toEqual({ email: '', sms: '', push: false, inApp: true, webhook: false, destinations: ['dst_team', 'dst_phone'] });
  });

  it('keeps the chosen destinations in the order of the user’s list', () => {
    const none = { destinations: [] };
    const teamOnly = chooseDestination(none, 'dst_team', true, [phone, team]);
    expect(teamOnly).toEqual(['dst_team']);
    expect(chooseDestination({ destinations: teamOnly }, 'dst_phone', true, [phone, team])).toEqual(['dst_phone', 'dst_team']);
    expect(chooseDestination({ destinations: ['dst_phone', 'dst_team'] }, 'dst_phone', false, [phone, team])).toEqual(['dst_team']);
  });

  it('names a destination removed since the task was saved, and drops it when saving', () => {
    const form = fromTask(task(['dst_gone', 'dst_phone']), {});
    expect(removedDestinations(form, [phone, team])).toEqual(['dst_gone']);
    // Ticking another keeps the removed one in the form until it is saved.
    expect(chooseDestination(form, 'dst_team', true, [phone, team])).toEqual(['dst_phone', 'dst_team', 'dst_gone']);
    expect(toBody(withoutRemoved(form, [phone, team])).notify).toMatchObject({ destinations: ['dst_phone'] });
    // Only removed ones: none left, so none sent.
    expect(toBody(withoutRemoved(fromTask(task(['dst_gone']), {}), [phone])).notify).not.toHaveProperty('destinations');
  });

  it('drops nothing when the user’s destinations could not be read', () => {
    const form = fromTask(task(['dst_gone']), {});
    expect(withoutRemoved(form, undefined)).toBe(form);
    expect(withoutRemoved(fromTask(task(['dst_phone']), {}), [phone]).destinations).toEqual(['dst_phone']);
  });

  it('shows a refused destination at the destinations', () => {
    expect(fieldOf('/notify/destinations/0', base())).toBe('destinations');
    expect(fieldOf('/notify/destinations', base())).toBe('destinations');
  });
});
