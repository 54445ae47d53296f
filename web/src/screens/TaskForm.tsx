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
import { noteText } from '../agenda';
import { weekdayNames, type MessageKey } from '../i18n';
import { useI18n } from '../i18n/react';

const ESCALATION_LABELS: Record<EscalationChannel, MessageKey> = {
  sms: 'channel.sms',
  email: 'channel.email',
  push: 'channel.push',
  webhook: 'channel.webhook',
};

const ORDINALS: Record<NthOrdinal, MessageKey> = {
  '1': 'taskForm.first',
  '2': 'taskForm.second',
  '3': 'taskForm.third',
  '4': 'taskForm.fourth',
  '-1': 'taskForm.last',
};

export function TaskFormScreen({ id }: { id?: string }) {
  const { t } = useI18n();
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
        <h1 tabIndex={-1}>{t('taskForm.editTask')}</h1>
        <div className="banner banner-error" role="alert">
          {loadError.message}
        </div>
      </>
    );
  }
  if (!form) return <p aria-busy="true">{t('common.loading')}</p>;
  return <TaskFormView id={id} initial={form} />;
}

export function TaskFormView({ id, initial }: { id?: string | undefined; initial: TaskForm }) {
  const { t } = useI18n();
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
        setErrors({ form: t('common.savingFailed') });
      }
    } finally {
      setSaving(false);
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>{id ? t('taskForm.editTask') : t('nav.newTask')}</h1>
      <div className="form-layout">
        <form ref={formRef} onSubmit={submit} noValidate aria-describedby={errors.form ? 'form-error' : undefined}>
          <div id="form-error" tabIndex={-1}>
            <FormError message={errors.form} />
          </div>
          <Field id="name" label={t('taskForm.name')} error={errors.name}>
            {(p) => <input {...p} value={form.name} onChange={(e) => set('name', e.target.value)} required />}
          </Field>
          <Field id="description" label={t('taskForm.descriptionOptional')} error={errors.description}>
            {(p) => <textarea {...p} rows={2} value={form.description} onChange={(e) => set('description', e.target.value)} />}
          </Field>
          <div className="two">
            <Field id="start" label={t('taskForm.dateAndTime')} error={errors.start}>
              {(p) => <input {...p} type="datetime-local" value={form.start} onChange={(e) => set('start', e.target.value)} required />}
            </Field>
            <Field id="timeZone" label={t('common.timeZone')} error={errors.timeZone}>
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
            <input type="checkbox" checked={form.floating} onChange={(e) => set('floating', e.target.checked)} />{' '}
            {t('taskForm.floating')}
          </label>
          {errors.floating && <p className="error">{errors.floating}</p>}

          <fieldset>
            <legend>{t('taskForm.repeats')}</legend>
            <div className="radios">
              <label>
                <input type="radio" name="repeat" checked={!form.repeat} onChange={() => set('repeat', false)} /> {t('taskForm.once')}
              </label>
              <label>
                <input
                  type="radio"
                  name="repeat"
                  checked={form.repeat && !form.custom}
                  onChange={() => setForm((f) => ({ ...f, repeat: true, custom: false }))}
                />{' '}
                {t('taskForm.repeating')}
              </label>
              <label>
                <input
                  type="radio"
                  name="repeat"
                  checked={form.repeat && form.custom}
                  onChange={() => setForm((f) => ({ ...f, repeat: true, custom: true, rrule: f.rrule || ruleOf({ ...f, repeat: true }) || '' }))}
                />{' '}
                {t('taskForm.customRule')}
              </label>
            </div>
            {form.repeat && <RepeatFields form={form} set={set} errors={errors} />}
          </fieldset>

          <fieldset>
            <legend>{t('taskForm.notifyMeBy')}</legend>
            <label className="check">
              <input type="checkbox" checked={form.inApp} onChange={(e) => set('inApp', e.target.checked)} /> {t('channel.inApp')}
            </label>
            <label className="check">
              <input type="checkbox" checked={form.emailOn} onChange={(e) => set('emailOn', e.target.checked)} /> {t('channel.email')}
            </label>
            {form.emailOn && (
              <Field id="email" label={t('common.emailAddress')} error={errors.email}>
                {(p) => <input {...p} type="email" autoComplete="email" value={form.email} onChange={(e) => set('email', e.target.value)} />}
              </Field>
            )}
            <label className="check">
              <input type="checkbox" checked={form.smsOn} onChange={(e) => set('smsOn', e.target.checked)} /> {t('channel.sms')}
            </label>
            {form.smsOn && (
              <Field id="sms" label={t('common.phoneNumber')} error={errors.sms}>
                {(p) => <input {...p} type="tel" autoComplete="tel" value={form.sms} onChange={(e) => set('sms', e.target.value)} />}
              </Field>
            )}
            <label className="check">
              <input type="checkbox" checked={form.push} onChange={(e) => set('push', e.target.checked)} /> {t('taskForm.pushHint')}
            </label>
            <label className="check">
              <input type="checkbox" checked={form.webhook} onChange={(e) => set('webhook', e.target.checked)} /> {t('channel.webhook')}
            </label>
            {errors.push && <p className="error">{errors.push}</p>}
            {errors.webhook && <p className="error">{errors.webhook}</p>}
            {destinations && (destinations.length > 0 || removed.length > 0) && (
              <fieldset className="also-send-to" aria-describedby={errors.destinations ? 'destinations-error' : undefined}>
                <legend>{t('taskForm.alsoSendTo')}</legend>
                {destinations.map((d) => (
                  <label key={d.id} className="check">
                    <input
                      type="checkbox"
                      aria-invalid={Boolean(errors.destinations)}
                      checked={form.destinations.includes(d.id)}
                      onChange={(e) => set('destinations', chooseDestination(form, d.id, e.target.checked, destinations))}
                    />{' '}
                    {t('task.destinationName', { name: d.name, service: serviceName(d.channel) })}
                  </label>
                ))}
                {removed.length > 0 && (
                  <p className="note removed">
                    {t('taskForm.removedDestinations', { count: removed.length })}
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
              <p className="hint">{t('taskForm.toAlsoSendReminders')}</p>
            )}
            <label className="check">
              <input type="checkbox" checked={form.urgent} onChange={(e) => set('urgent', e.target.checked)} />{' '}
              {t('taskForm.urgent')}
            </label>
            {errors.urgent && <p className="error">{errors.urgent}</p>}
            <label className="check">
              <input type="checkbox" checked={form.nag} onChange={(e) => set('nag', e.target.checked)} /> {t('taskForm.nag')}
            </label>
            {form.nag && (
              <div className="row-fields">
                {(
                  [
                    ['nagEveryMinutes', 'taskForm.nagEvery', 1440],
                    ['nagTimes', 'taskForm.nagTimes', 20],
                  ] as const
                ).map(([id, label, max]) => (
                  <Field key={id} id={id} label={t(label)} error={errors[id]}>
                    {(p) => (
                      <input {...p} type="number" inputMode="numeric" min={1} max={max} value={form[id]} onChange={(e) => set(id, e.target.value)} />
                    )}
                  </Field>
                ))}
              </div>
            )}
            {ESCALATION_CHANNELS.some((c) => notifiesOn(form, c)) && (
              <fieldset>
                <legend>{t('taskForm.escalateSendOnA')}</legend>
                <p className="hint">{t('taskForm.minutesAfterItFires')}</p>
                <div className="row-fields">
                  {ESCALATION_CHANNELS.filter((c) => notifiesOn(form, c)).map((channel) => (
                    <Field key={channel} id={`escalate-${channel}`} label={t('taskForm.escalateAfter', { channel: t(ESCALATION_LABELS[channel]) })}>
                      {(p) => (
                        <input
                          {...p}
                          type="number"
                          inputMode="numeric"
                          min={1}
                          max={1440}
                          placeholder={t('taskForm.atOnce')}
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
            <legend>{t('taskForm.ifChimeWasDown')}</legend>
            <div className="radios vertical">
              {(
                [
                  ['fireOnceLate', 'taskForm.missedOnce'],
                  ['fireAll', 'taskForm.missedAll'],
                  ['skip', 'taskForm.missedSkip'],
                ] as const
              ).map(([value, label]) => (
                <label key={value}>
                  <input type="radio" name="missed" checked={form.missed === value} onChange={() => set('missed', value)} /> {t(label)}
                </label>
              ))}
            </div>
            {form.missed === 'skip' && (
              <Field id="skipLimitMinutes" label={t('taskForm.tooLateAfterMinutes')} error={errors.skipLimitMinutes}>
                {(p) => (
                  <input {...p} inputMode="numeric" value={form.skipLimitMinutes} onChange={(e) => set('skipLimitMinutes', e.target.value)} />
                )}
              </Field>
            )}
          </fieldset>

          <div className="actions">
            <button type="submit" className="primary" disabled={saving}>
              {id ? t('taskForm.saveChanges') : t('taskForm.createTask')}
            </button>
            <button type="button" onClick={() => (id ? navigate(`/tasks/${id}`) : navigate('/tasks'))}>
              {t('common.cancel')}
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
  const { t, rich, locale } = useI18n();
  const shortDays = weekdayNames(locale, 'short');
  const longDays = weekdayNames(locale, 'long');
  const rule = ruleOf(form);
  if (form.custom) {
    return (
      <div className="repeat">
        <Field
          id="rrule"
          label={t('taskForm.ruleRfc5545Rrule')}
          hint={t('taskForm.ruleHint')}
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
        <Field id="frequency" label={t('taskForm.every')} error={errors.frequency}>
          {(p) => <input {...p} inputMode="numeric" value={form.frequency} onChange={(e) => set('frequency', e.target.value)} />}
        </Field>
        <Field id="period" label={t('taskForm.period')} error={errors.period}>
          {(p) => (
            <select {...p} value={form.period} onChange={(e) => set('period', e.target.value as TaskForm['period'])}>
              <option value="day">{t('taskForm.dayS')}</option>
              <option value="week">{t('taskForm.weekS')}</option>
              <option value="month">{t('taskForm.monthS')}</option>
              <option value="year">{t('taskForm.yearS')}</option>
            </select>
          )}
        </Field>
      </div>
      {form.period === 'week' && (
        <fieldset className="weekdays" aria-describedby={errors.weekdays ? 'weekdays-error' : undefined}>
          <legend>{t('taskForm.on')}</legend>
          {WEEKDAYS.map((day, i) => (
            <label key={day} className="chip">
              <input
                type="checkbox"
                aria-invalid={Boolean(errors.weekdays)}
                checked={form.weekdays.includes(day)}
                onChange={(e) => set('weekdays', e.target.checked ? [...form.weekdays, day] : form.weekdays.filter((d) => d !== day))}
              />
              <span aria-hidden="true">{shortDays[i]}</span>
              <span className="visually-hidden">{longDays[i]}</span>
            </label>
          ))}
          {errors.weekdays && (
            <p className="error" id="weekdays-error">
              {errors.weekdays}
            </p>
          )}
          <p className="hint">{t('taskForm.noneTickedTheStart')}</p>
        </fieldset>
      )}
      {form.period === 'month' && (
        <fieldset>
          <legend>{t('taskForm.on')}</legend>
          <div className="radios">
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'day'} onChange={() => set('monthMode', 'day')} /> {t('taskForm.monthDays')}
            </label>
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'last'} onChange={() => set('monthMode', 'last')} /> {t('taskForm.lastDay')}
            </label>
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'nth'} onChange={() => set('monthMode', 'nth')} /> {t('taskForm.nthWeekday')}
            </label>
            <label>
              <input type="radio" name="monthMode" checked={form.monthMode === 'lastWeekday'} onChange={() => set('monthMode', 'lastWeekday')} />{' '}
              {t('taskForm.theLastWeekdayMonday')}
            </label>
          </div>
          {form.monthMode === 'nth' && (
            <div className="two">
              <Field id="nthOrdinal" label={t('taskForm.which')}>
                {(p) => (
                  <select {...p} value={form.nthOrdinal} onChange={(e) => set('nthOrdinal', e.target.value as NthOrdinal)}>
                    {NTH_ORDINALS.map((n) => (
                      <option key={n} value={n}>
                        {t(ORDINALS[n])}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field id="nthWeekday" label={t('taskForm.weekday')}>
                {(p) => (
                  <select {...p} value={form.nthWeekday} onChange={(e) => set('nthWeekday', e.target.value as Weekday)}>
                    {WEEKDAYS.map((d, i) => (
                      <option key={d} value={d}>
                        {longDays[i]}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            </div>
          )}
          {form.monthMode === 'day' && (
            <Field id="monthDay" label={t('taskForm.days')} hint={t('taskForm.monthDayHint')} error={errors.monthDay}>
              {(p) => <input {...p} value={form.monthDay} onChange={(e) => set('monthDay', e.target.value)} />}
            </Field>
          )}
        </fieldset>
      )}
      <fieldset>
        <legend>{t('taskForm.ends')}</legend>
        <div className="radios">
          {(
            [
              ['never', 'taskForm.endsNever'],
              ['after', 'taskForm.endsAfter'],
              ['on', 'taskForm.endsOn'],
            ] as const
          ).map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="ends" checked={form.endsMode === value} onChange={() => set('endsMode', value)} /> {t(label)}
            </label>
          ))}
        </div>
        {form.endsMode === 'after' && (
          <Field id="endsCount" label={t('taskForm.numberOfTimes')} error={errors.endsCount}>
            {(p) => <input {...p} inputMode="numeric" value={form.endsCount} onChange={(e) => set('endsCount', e.target.value)} />}
          </Field>
        )}
        {form.endsMode === 'on' && (
          <Field id="endsDate" label={t('taskForm.lastDate')} error={errors.endsDate}>
            {(p) => <input {...p} type="date" value={form.endsDate} onChange={(e) => set('endsDate', e.target.value)} />}
          </Field>
        )}
      </fieldset>
      {rule && (
        <p className="hint rule">
          {rich('taskForm.asRule', { rule: <code>{rule}</code> })}
        </p>
      )}
    </div>
  );
}

/** The next 10 occurrences of the form as it is now. */
function Preview({ form }: { form: TaskForm }) {
  const { t, locale } = useI18n();
  // Quiet hours end on the profile's clock, as the server reads them.
  const { settings } = useApp();
  const [items, setItems] = useState<PreviewItem[]>();
  const [problem, setProblem] = useState<string>();
  const opened = useRef(false);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(async () => {
      try {
        const answer = await bff<{ occurrences: PreviewItem[] }>('/preview', { method: 'POST', body: toBody({ ...form, name: form.name || t('taskForm.preview') }) });
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
        setProblem(err instanceof ProblemError ? (err.problem.errors?.[0]?.detail ?? err.message) : t('taskForm.noPreview'));
      }
    }, 300);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [form, t]);
  return (
    <aside className="preview" aria-labelledby="preview-heading">
      <h2 id="preview-heading">{t('taskForm.nextOccurrences')}</h2>
      <p className="subtle">
        {t('taskForm.previewRule', { rule: describe(form, locale), zone: form.timeZone })}
      </p>
      {problem && <p className="subtle">{problem}</p>}
      {items && items.length === 0 && <p>{t('taskForm.noOccurrenceIsStill')}</p>}
      {items && items.length > 0 && (
        <ol className="occurrences" aria-live="polite">
          {items.map((item) => (
            <li key={item.at}>
              <time dateTime={item.at}>{dateTime(item.at, form.timeZone, locale)}</time>
              {item.note && (
                <span className="note">
                  <span aria-hidden="true">⚠ </span>
                  {item.notes ? item.notes.map((n) => noteText(n, item.at, settings.timeZone, locale)).join('; ') : item.note}
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
    </aside>
  );
}
