// The task form: create or edit. As the user types, a live preview shows the next 10
// occurrences (from the server's own recurrence engine, through the BFF, which notes where
// DST or a short month moves or skips one). Server validation errors are shown next to the
// field their JSON pointer names; the first invalid field gets focus. The user's destinations
// (Settings) are offered as "Also send to"; one the task names but the user has since removed
// is shown as such and dropped on save.

import { useEffect, useRef, useState, type FormEvent } from 'react';
import { bff, listDestinations, ProblemError, serviceName, type Destination, type PreviewItem, type Task } from '../api';
import { Field, FormError } from '../components/Field';
import { useRouter } from '../router';
import { useApp } from '../state';
import { timeZones } from '../settings';
import { track } from '../telemetry';
import { dateTime } from '../time';
import {
  channelsChosen,
  chooseDestination,
  describe,
  emptyForm,
  errorsByField,
  ESCALATION_CHANNELS,
  fromTask,
  notifiesOn,
  NTH_ORDINALS,
  removedDestinations,
  ruleOf,
  taskVariant,
  toBody,
  WEEKDAYS,
  withoutRemoved,
  type EscalationChannel,
  type FieldId,
  type NthOrdinal,
  type TaskForm,
  type Weekday,
} from '../recurrence';

const ESCALATION_LABELS: Record<EscalationChannel, string> = { sms: 'SMS', email: 'Email', push: 'Web push', webhook: 'Webhook' };

export function TaskFormScreen({ id }: { id?: string }) {
  const { settings, settingsLoaded } = useApp();
  // A new task starts from the user's defaults, so the form waits for them.
  const [form, setForm] = useState<TaskForm | null>(null);
  const [loadError, setLoadError] = useState<Error>();
  useEffect(() => {
    if (!settingsLoaded) return;
    if (!id) {
      setForm((f) => f ?? emptyForm({ timeZone: settings.timeZone, email: settings.email, sms: settings.phone, channels: settings.channels }));
      return;
    }
    bff<{ task: Task }>(`/tasks/${id}`).then(
      (page) => setForm(fromTask(page.task, { email: settings.email, sms: settings.phone })),
      (e: Error) => setLoadError(e),
    );
  }, [id, settingsLoaded, settings.timeZone, settings.email, settings.phone, settings.channels]);
  if (loadError) {
    return (
      <>
        <h1 tabIndex={-1}>Edit task</h1>
        <div className="banner banner-error" role="alert">
          {loadError.message}
        </div>
      </>
    );
  }
  if (!form) return <p aria-busy="true">Loading…</p>;
  return <TaskFormView id={id} initial={form} />;
}

export function TaskFormView({ id, initial }: { id?: string | undefined; initial: TaskForm }) {
  const { navigate } = useRouter();
  const [form, setForm] = useState(initial);
  const [errors, setErrors] = useState<Partial<Record<FieldId, string>>>({});
  const [saving, setSaving] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const zones = useRef(timeZones());
  const focusInvalid = useRef(false);
  // The user's destinations; undefined until read (or if they cannot be): then none is offered
  // and none dropped.
  const [destinations, setDestinations] = useState<Destination[]>();
  useEffect(() => {
    let live = true;
    listDestinations().then(
      (list) => live && setDestinations(list),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);
  const removed = destinations ? removedDestinations(form, destinations) : [];

  // After the server's errors are committed to the page, not before: a frame callback could
  // run before React renders them and find nothing to focus.
  useEffect(() => {
    if (!focusInvalid.current) return;
    focusInvalid.current = false;
    const invalid = formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    (invalid ?? formRef.current?.querySelector<HTMLElement>('[role="alert"]'))?.focus();
  }, [errors]);

  const set = <K extends keyof TaskForm>(key: K, value: TaskForm[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
    if (key === 'timeZone') track('time_zone_changed');
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaving(true);
    setErrors({});
    try {
      const body = toBody(withoutRemoved(form, destinations));
      const saved = id
        ? await bff<Task>(`/tasks/${id}`, { method: 'PUT', body })
        : await bff<Task>('/tasks', { method: 'POST', body });
      if (id) track('task_updated', form.repeat ? 'repeating' : 'once');
      else {
        track('task_created', taskVariant(form));
        for (const channel of channelsChosen(form)) track('channel_chosen', channel);
        track('missed_policy', form.missed);
      }
      navigate(`/tasks/${saved.id}`);
    } catch (err) {
      if (err instanceof ProblemError) {
        const byField = errorsByField(err.byPointer(), form);
        if (Object.keys(byField).length === 0) byField.form = err.message;
        // Once these errors are rendered, the first invalid field gets focus (the effect
        // below), so keyboard and screen reader users land on it.
        focusInvalid.current = true;
        setErrors(byField);
      } else {
        setErrors({ form: 'Saving failed. Try again.' });
      }
    } finally {
      setSaving(false);
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>{id ? 'Edit task' : 'New task'}</h1>
      <div className="form-layout">
        <form ref={formRef} onSubmit={submit} noValidate aria-describedby={errors.form ? 'form-error' : undefined}>
          <div id="form-error" tabIndex={-1}>
            <FormError message={errors.form} />
          </div>
          <Field id="name" label="Name" error={errors.name}>
            {(p) => <input {...p} value={form.name} onChange={(e) => set('name', e.target.value)} required />}
          </Field>
          <Field id="description" label="Description (optional)" error={errors.description}>
            {(p) => <textarea {...p} rows={2} value={form.description} onChange={(e) => set('description', e.target.value)} />}
          </Field>
          <div className="two">
            <Field id="start" label="Date and time" error={errors.start}>
              {(p) => <input {...p} type="datetime-local" value={form.start} onChange={(e) => set('start', e.target.value)} required />}
            </Field>
            <Field id="timeZone" label="Time zone" error={errors.timeZone}>
              {(p) => (
                <select {...p} value={form.timeZone} onChange={(e) => set('timeZone', e.target.value)}>
                  {(zones.current.includes(form.timeZone) ? zones.current : [form.timeZone, ...zones.current]).map((z) => (
                    <option key={z} value={z}>
                      {z}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          <label className="check">
            <input type="checkbox" checked={form.floating} onChange={(e) => set('floating', e.target.checked)} /> Follow me: the same
            local time wherever I am (the zone in Settings; when I change it there, this moves with me)
          </label>
          {errors.floating && <p className="error">{errors.floating}</p>}

          <fieldset>
            <legend>Repeats</legend>
            <div className="radios">
              <label>
                <input type="radio" name="repeat" checked={!form.repeat} onChange={() => set('repeat', false)} /> Once
              </label>
              <label>
                <input
                  type="radio"
                  name="repeat"
                  checked={form.repeat && !form.custom}
                  onChange={() => setForm((f) => ({ ...f, repeat: true, custom: false }))}
                />{' '}
                Repeating
              </label>
              <label>
                <input
                  type="radio"
                  name="repeat"
                  checked={form.repeat && form.custom}
                  onChange={() => setForm((f) => ({ ...f, repeat: true, custom: true, rrule: f.rrule || ruleOf({ ...f, repeat: true }) || '' }))}
                />{' '}
                Custom rule
              </label>
            </div>
            {form.repeat && <RepeatFields form={form} set={set} errors={errors} />}
          </fieldset>

          <fieldset>
            <legend>Notify me by</legend>
            <label className="check">
              <input type="checkbox" checked={form.inApp} onChange={(e) => set('inApp', e.target.checked)} /> In-app inbox
            </label>
            <label className="check">
              <input type="checkbox" checked={form.emailOn} onChange={(e) => set('emailOn', e.target.checked)} /> Email
            </label>
            {form.emailOn && (
              <Field id="email" label="Email address" error={errors.email}>
                {(p) => <input {...p} type="email" autoComplete="email" value={form.email} onChange={(e) => set('email', e.target.value)} />}
              </Field>
            )}
            <label className="check">
              <input type="checkbox" checked={form.smsOn} onChange={(e) => set('smsOn', e.target.checked)} /> SMS
            </label>
            {form.smsOn && (
              <Field id="sms" label="Phone number" error={errors.sms}>
                {(p) => <input {...p} type="tel" autoComplete="tel" value={form.sms} onChange={(e) => set('sms', e.target.value)} />}
              </Field>
            )}
            <label className="check">
              <input type="checkbox" checked={form.push} onChange={(e) => set('push', e.target.checked)} /> Web push (browsers you
              turned it on in)
            </label>
            <label className="check">
              <input type="checkbox" checked={form.webhook} onChange={(e) => set('webhook', e.target.checked)} /> Webhook
            </label>
            {errors.push && <p className="error">{errors.push}</p>}
            {errors.webhook && <p className="error">{errors.webhook}</p>}
            {destinations && (destinations.length > 0 || removed.length > 0) && (
              <fieldset className="also-send-to" aria-describedby={errors.destinations ? 'destinations-error' : undefined}>
                <legend>Also send to</legend>
                {destinations.map((d) => (
                  <label key={d.id} className="check">
                    <input
                      type="checkbox"
                      aria-invalid={Boolean(errors.destinations)}
                      checked={form.destinations.includes(d.id)}
                      onChange={(e) => set('destinations', chooseDestination(form, d.id, e.target.checked, destinations))}
                    />{' '}
                    {d.name} ({serviceName(d.channel)})
                  </label>
                ))}
                {removed.length > 0 && (
                  <p className="note removed">
                    {removed.length === 1
                      ? 'Also sent to a removed destination: saving drops it from this task.'
                      : `Also sent to ${removed.length} removed destinations: saving drops them from this task.`}
                  </p>
                )}
                {errors.destinations && (
                  <p className="error" id="destinations-error">
                    {errors.destinations}
                  </p>
                )}
              </fieldset>
            )}
            {destinations && destinations.length === 0 && removed.length === 0 && (
              <p className="hint">To also send reminders to ntfy, Gotify, Telegram, Slack, Discord or Matrix, add a destination in Settings.</p>
            )}
            <label className="check">
              <input type="checkbox" checked={form.urgent} onChange={(e) => set('urgent', e.target.checked)} /> Urgent: email, SMS and
              push go out at once, even during my quiet hours
            </label>
            {errors.urgent && <p className="error">{errors.urgent}</p>}
            <label className="check">
              <input type="checkbox" checked={form.nag} onChange={(e) => set('nag', e.target.checked)} /> Repeat until I mark it
              done
            </label>
            {form.nag && (
              <div className="row-fields">
                {(
                  [
                    ['nagEveryMinutes', 'Every (minutes)', 1440],
                    ['nagTimes', 'At most (times)', 20],
                  ] as const
                ).map(([id, label, max]) => (
                  <Field key={id} id={id} label={label} error={errors[id]}>
                    {(p) => (
                      <input {...p} type="number" inputMode="numeric" min={1} max={max} value={form[id]} onChange={(e) => set(id, e.target.value)} />
                    )}
                  </Field>
                ))}
              </div>
            )}
            {ESCALATION_CHANNELS.some((c) => notifiesOn(form, c)) && (
              <fieldset>
                <legend>Escalate: send on a channel only if still not done</legend>
                <p className="hint">Minutes after it fires; leave empty to send at once.</p>
                <div className="row-fields">
                  {ESCALATION_CHANNELS.filter((c) => notifiesOn(form, c)).map((channel) => (
                    <Field key={channel} id={`escalate-${channel}`} label={`${ESCALATION_LABELS[channel]} after (minutes)`}>
                      {(p) => (
                        <input
                          {...p}
                          type="number"
                          inputMode="numeric"
                          min={1}
                          max={1440}
                          placeholder="at once"
                          value={form.escalate[channel]}
                          onChange={(e) => set('escalate', { ...form.escalate, [channel]: e.target.value })}
                        />
                      )}
                    </Field>
                  ))}
                </div>
                {errors.escalate && <p className="error">{errors.escalate}</p>}
              </fieldset>
            )}
          </fieldset>

          <fieldset>
            <legend>If Chime was down when it was due</legend>
            <div className="radios vertical">
              {(
                [
                  ['fireOnceLate', 'Notify once, late'],
                  ['fireAll', 'Notify for every missed occurrence'],
                  ['skip', 'Skip it if too late'],
                ] as const
              ).map(([value, label]) => (
                <label key={value}>
                  <input type="radio" name="missed" checked={form.missed === value} onChange={() => set('missed', value)} /> {label}
                </label>
              ))}
            </div>
            {form.missed === 'skip' && (
              <Field id="skipLimitMinutes" label="Too late after (minutes)" error={errors.skipLimitMinutes}>
                {(p) => (
                  <input {...p} inputMode="numeric" value={form.skipLimitMinutes} onChange={(e) => set('skipLimitMinutes', e.target.value)} />
                )}
              </Field>
            )}
          </fieldset>

          <div className="actions">
            <button type="submit" className="primary" disabled={saving}>
              {id ? 'Save changes' : 'Create task'}
            </button>
            <button type="button" onClick={() => (id ? navigate(`/tasks/${id}`) : navigate('/tasks'))}>
              Cancel
            </button>
          </div>
        </form>
        <Preview form={form} />
      </div>
    </>
  );
}

function RepeatFields({
  form,
  set,
  errors,
}: {
  form: TaskForm;
  set: <K extends keyof TaskForm>(key: K, value: TaskForm[K]) => void;
  errors: Partial<Record<FieldId, string>>;
}) {
  const rule = ruleOf(form);
  if (form.custom) {
    return (
      <div className="repeat">
        <Field
          id="rrule"
          label="Rule (RFC 5545 RRULE)"
          hint="For example FREQ=MONTHLY;BYDAY=2TU (the second Tuesday) or FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17 (three times a day on weekdays). COUNT or UNTIL ends it."
          error={errors.rrule}
        >
          {(p) => <input {...p} value={form.rrule} spellCheck={false} autoCapitalize="characters" onChange={(e) => set('rrule', e.target.value)} />}
        </Field>
      </div>
    );
  }
  return (
    <div className="repeat">
      <div className="two">
        <Field id="frequency" label="Every" error={errors.frequency}>
          {(p) => <input {...p} inputMode="numeric" value={form.frequency} onChange={(e) => set('frequency', e.target.value)} />}
        </Field>
        <Field id="period" label="Period" error={errors.period}>
          {(p) => (
            <select {...p} value={form.period} onChange={(e) => set('period', e.target.value as TaskForm['period'])}>
              <option value="day">day(s)</option>
              <option value="week">week(s)</option>
              <option value="month">month(s)</option>
              <option value="year">year(s)</option>
            </select>
          )}
        </Field>
      </div>
      {form.period === 'week' && (
        <fieldset className="weekdays" aria-describedby={errors.weekdays ? 'weekdays-error' : undefined}>
          <legend>On</legend>
          {WEEKDAYS.map((day) => (
            <label key={day} className="chip">
              <input
                type="checkbox"
                aria-invalid={Boolean(errors.weekdays)}
                checked={form.weekdays.includes(day)}
                onChange={(e) => set('weekdays', e.target.checked ? [...form.weekdays, day] : form.weekdays.filter((d) => d !== day))}
              />
              <span>{day.slice(0, 3)}</span>
              <span className="visually-hidden">{day.slice(3)}</span>
            </label>
          ))}
          {errors.weekdays && (
            <p className="error" id="weekdays-error">
              {errors.weekdays}
            </p>
          )}
          <p className="hint">None ticked: the start date’s weekday.</p>
        </fieldset>
      )}
      {form.period === 'month' && (
        <fieldset>
          <legend>On</legend>
          <div className="radios">
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'day'} onChange={() => set('monthMode', 'day')} /> Day(s) of
              the month
            </label>
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'last'} onChange={() => set('monthMode', 'last')} /> The last
              day
            </label>
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'nth'} onChange={() => set('monthMode', 'nth')} /> A weekday
              of the month
            </label>
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'lastWeekday'} onChange={() => set('monthMode', 'lastWeekday')} />{' '}
              The last weekday (Monday to Friday)
            </label>
          </div>
          {form.monthMode === 'nth' && (
            <div className="two">
              <Field id="nthOrdinal" label="Which">
                {(p) => (
                  <select {...p} value={form.nthOrdinal} onChange={(e) => set('nthOrdinal', e.target.value as NthOrdinal)}>
                    {NTH_ORDINALS.map((n) => (
                      <option key={n} value={n}>
                        {{ '1': 'First', '2': 'Second', '3': 'Third', '4': 'Fourth', '-1': 'Last' }[n]}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field id="nthWeekday" label="Weekday">
                {(p) => (
                  <select {...p} value={form.nthWeekday} onChange={(e) => set('nthWeekday', e.target.value as Weekday)}>
                    {WEEKDAYS.map((d) => (
                      <option key={d} value={d}>
                        {d[0]!.toUpperCase() + d.slice(1)}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            </div>
          )}
          {form.monthMode === 'day' && (
            <Field id="monthDay" label="Days" hint="For example 1, 15 or 31. Empty: the start date’s day." error={errors.monthDay}>
              {(p) => <input {...p} value={form.monthDay} onChange={(e) => set('monthDay', e.target.value)} />}
            </Field>
          )}
        </fieldset>
      )}
      <fieldset>
        <legend>Ends</legend>
        <div className="radios">
          {(
            [
              ['never', 'Never'],
              ['after', 'After a number of times'],
              ['on', 'On a date'],
            ] as const
          ).map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="ends" checked={form.endsMode === value} onChange={() => set('endsMode', value)} /> {label}
            </label>
          ))}
        </div>
        {form.endsMode === 'after' && (
          <Field id="endsCount" label="Number of times" error={errors.endsCount}>
            {(p) => <input {...p} inputMode="numeric" value={form.endsCount} onChange={(e) => set('endsCount', e.target.value)} />}
          </Field>
        )}
        {form.endsMode === 'on' && (
          <Field id="endsDate" label="Last date" error={errors.endsDate}>
            {(p) => <input {...p} type="date" value={form.endsDate} onChange={(e) => set('endsDate', e.target.value)} />}
          </Field>
        )}
      </fieldset>
      {rule && (
        <p className="hint rule">
          As a calendar rule: <code>{rule}</code>
        </p>
      )}
    </div>
  );
}

/** The next 10 occurrences of the form as it is now. */
function Preview({ form }: { form: TaskForm }) {
  const [items, setItems] = useState<PreviewItem[]>();
  const [problem, setProblem] = useState<string>();
  const opened = useRef(false);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(async () => {
      try {
        const answer = await bff<{ occurrences: PreviewItem[] }>('/preview', { method: 'POST', body: toBody({ ...form, name: form.name || 'Preview' }) });
        if (!live) return;
        setItems(answer.occurrences);
        setProblem(undefined);
        if (!opened.current) {
          opened.current = true;
          track('preview_opened');
        }
      } catch (err) {
        if (!live) return;
        setItems(undefined);
        setProblem(err instanceof ProblemError ? (err.problem.errors?.[0]?.detail ?? err.message) : 'No preview.');
      }
    }, 300);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [form]);
  return (
    <aside className="preview" aria-labelledby="preview-heading">
      <h2 id="preview-heading">Next occurrences</h2>
      <p className="subtle">
        {describe(form)} · {form.timeZone}
      </p>
      {problem && <p className="subtle">{problem}</p>}
      {items && items.length === 0 && <p>No occurrence is still to come.</p>}
      {items && items.length > 0 && (
        <ol className="occurrences" aria-live="polite">
          {items.map((item) => (
            <li key={item.at}>
              <time dateTime={item.at}>{dateTime(item.at, form.timeZone)}</time>
              {item.note && (
                <span className="note">
                  <span aria-hidden="true">⚠ </span>
                  {item.note}
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
    </aside>
  );
}
