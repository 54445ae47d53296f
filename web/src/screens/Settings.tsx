// Settings, saved to the user's profile on the server: defaults for new tasks (email, phone,
// channels), the time zone screens use, quiet hours, and feature-usage telemetry (on unless
// opted out); then what this browser keeps for itself (theme, keyboard shortcuts, web push), the
// webhook endpoint and the user's destinations (SettingsDestinations).

import { useEffect, useState, type FormEvent } from 'react';
import { bff, ProblemError } from '../api';
import { BrowserSettings } from '../components/BrowserSettings';
import { Field } from '../components/Field';
import { useApp } from '../state';
import { timeZones, type Channels, type QuietWindow, type Settings } from '../settings';
import { track } from '../telemetry';
import { dateTime } from '../time';
import { DestinationSettings } from './SettingsDestinations';
import { weekdayNames, type MessageKey } from '../i18n';
import { useI18n } from '../i18n/react';

/** The profile's day names, Monday first (their short names are the locale's). */
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

const CHANNELS: Array<[keyof Channels, MessageKey]> = [
  ['inApp', 'channel.inApp'],
  ['email', 'channel.email'],
  ['sms', 'channel.sms'],
  ['push', 'channel.push'],
  ['webhook', 'channel.webhook'],
];

export function SettingsScreen() {
  const { t, locale } = useI18n();
  const shortDays = weekdayNames(locale, 'short');
  const { settings, updateSettings, announce } = useApp();
  const [draft, setDraft] = useState(settings);
  const [dirty, setDirty] = useState(false);
  const [saved, setSaved] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  // The server's settings arrive after the first render: show them unless the user is editing.
  useEffect(() => {
    if (!dirty) setDraft(settings);
  }, [settings, dirty]);
  const edit = (next: Settings) => {
    setDraft(next);
    setDirty(true);
    setSaved(false);
  };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await updateSettings(draft);
      setErrors({});
      setDirty(false);
      setSaved(true);
      announce(t('settings.savedAnnounced'));
    } catch (err) {
      setErrors(err instanceof ProblemError ? err.byPointer() : { '': t('settings.savingFailed') });
      announce(t('settings.notSavedAnnounced'));
    }
  };
  const setWindow = (i: number, window: QuietWindow) =>
    edit({ ...draft, quietHours: draft.quietHours.map((w, j) => (j === i ? window : w)) });
  const windowError = (i: number) =>
    Object.entries(errors)
      .filter(([pointer]) => pointer.startsWith(`/quietHours/${i}`))
      .map(([, detail]) => detail)[0];
  return (
    <>
      <h1 tabIndex={-1}>{t('settings.settings')}</h1>
      <form onSubmit={(e) => void save(e)} className="settings" noValidate>
        <p className="hint">{t('settings.savedToYourAccount')}</p>
        <h2>{t('settings.defaultsForNewTasks')}</h2>
        <Field id="default-email" label={t('common.emailAddress')} error={errors['/email']}>
          {(p) => <input {...p} type="email" autoComplete="email" value={draft.email} onChange={(e) => edit({ ...draft, email: e.target.value })} />}
        </Field>
        <Field id="default-phone" label={t('common.phoneNumber')} hint={t('common.phoneHint')} error={errors['/phone']}>
          {(p) => <input {...p} type="tel" autoComplete="tel" value={draft.phone} onChange={(e) => edit({ ...draft, phone: e.target.value })} />}
        </Field>
        <fieldset className="channels">
          <legend>{t('settings.notifyNewTasksBy')}</legend>
          <div className="radios">
          {CHANNELS.map(([key, label]) => (
            <label key={key} className="check">
              <input
                type="checkbox"
                checked={draft.channels[key]}
                onChange={(e) => edit({ ...draft, channels: { ...draft.channels, [key]: e.target.checked } })}
              />{' '}
              {t(label)}
            </label>
          ))}
          </div>
        </fieldset>
        <Field id="time-zone" label={t('common.timeZone')} error={errors['/timeZone']}>
          {(p) => (
            <select {...p} value={draft.timeZone} onChange={(e) => edit({ ...draft, timeZone: e.target.value })}>
              {timeZones().map((z) => (
                <option key={z} value={z}>
                  {z}
                </option>
              ))}
            </select>
          )}
        </Field>
        <h2>{t('settings.quietHours')}</h2>
        <p className="hint">
          {t('settings.emailSmsAndPush')}
        </p>
        {draft.quietHours.length === 0 && <p>{t('settings.noQuietHours')}</p>}
        {draft.quietHours.map((window, i) => (
          <fieldset key={i} className="quiet-window">
            <legend>{t('settings.quietWindow', { n: i + 1 })}</legend>
            <div className="weekdays" role="group" aria-label={t('settings.quietWindowDays', { n: i + 1 })}>
              {WEEKDAYS.map((day, d) => (
                <label key={day} className="chip">
                  <input
                    type="checkbox"
                    checked={window.days.includes(day)}
                    onChange={(e) =>
                      setWindow(i, {
                        ...window,
                        days: WEEKDAYS.filter((d) => (d === day ? e.target.checked : window.days.includes(d))),
                      })
                    }
                  />{' '}
                  {shortDays[d]}
                </label>
              ))}
            </div>
            <div className="two">
              <label className="field">
                {t('settings.from')}<input type="time" value={window.from} onChange={(e) => setWindow(i, { ...window, from: e.target.value })} />
              </label>
              <label className="field">
                {t('settings.to')}<input type="time" value={window.to} onChange={(e) => setWindow(i, { ...window, to: e.target.value })} />
              </label>
            </div>
            <div className="actions">
              {window.to <= window.from && <span className="hint">{t('settings.endsTheNextDay')}</span>}
              <button type="button" className="danger small" onClick={() => edit({ ...draft, quietHours: draft.quietHours.filter((_, j) => j !== i) })}>
                {t('settings.remove')}
              </button>
            </div>
            {windowError(i) && (
              <p className="error" role="alert">
                {windowError(i)}
              </p>
            )}
          </fieldset>
        ))}
        <button
          type="button"
          onClick={() => edit({ ...draft, quietHours: [...draft.quietHours, { days: WEEKDAYS, from: '22:00', to: '07:00' }] })}
        >
          {t('settings.addQuietHours')}
        </button>
        <h2>{t('settings.privacy')}</h2>
        <label className="check">
          <input type="checkbox" checked={draft.telemetry} onChange={(e) => edit({ ...draft, telemetry: e.target.checked })} />{' '}
          {t('settings.telemetry')}
        </label>
        <div className="actions">
          <button type="submit" className="primary">
            {t('settings.saveSettings')}
          </button>
          {saved && <span role="status">{t('settings.saved')}</span>}
          {errors[''] && <span role="alert">{errors['']}</span>}
        </div>
      </form>
      <BrowserSettings />
      <PushSettings />
      <WebhookSettings />
      <DestinationSettings />
      <CalendarFeedSettings />
      <CalendarImport />
    </>
  );
}

function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const padded = (value + '='.repeat((4 - (value.length % 4)) % 4)).replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(padded);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function PushSettings() {
  const { t } = useI18n();
  const supported = 'serviceWorker' in navigator && 'PushManager' in window;
  const [key, setKey] = useState<string | null>();
  const [subscribed, setSubscribed] = useState(false);
  const [message, setMessage] = useState<string>();
  useEffect(() => {
    bff<{ publicKey: string }>('/api/push/public-key').then(
      (k) => setKey(k.publicKey),
      () => setKey(null),
    );
    if (supported) {
      navigator.serviceWorker.getRegistration('/').then(async (reg) => setSubscribed(Boolean(await reg?.pushManager.getSubscription())));
    }
  }, [supported]);

  const turnOn = async () => {
    try {
      if (!key) return;
      const registration = await navigator.serviceWorker.register('/sw.js');
      await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key) });
      const json = subscription.toJSON();
      await bff('/api/push/subscriptions', { method: 'POST', body: { endpoint: json.endpoint, keys: json.keys } });
      setSubscribed(true);
      setMessage(t('settings.pushOn'));
      track('push_enabled', 'on');
    } catch (err) {
      setMessage(err instanceof Error ? t('settings.pushFailedBecause', { reason: err.message }) : t('settings.pushFailed'));
    }
  };

  const turnOff = async () => {
    const registration = await navigator.serviceWorker.getRegistration('/');
    const subscription = await registration?.pushManager.getSubscription();
    if (subscription) {
      const list = await bff<{ subscriptions: Array<{ id: string; endpoint: string }> }>('/api/push/subscriptions');
      const mine = list.subscriptions.find((s) => s.endpoint === subscription.endpoint);
      if (mine) await bff(`/api/push/subscriptions/${mine.id}`, { method: 'DELETE' });
      await subscription.unsubscribe();
    }
    setSubscribed(false);
    setMessage(t('settings.pushOff'));
    track('push_enabled', 'off');
  };

  return (
    <section aria-labelledby="push-heading">
      <h2 id="push-heading">{t('settings.webPushInThis')}</h2>
      {!supported && <p>{t('settings.thisBrowserDoesNot')}</p>}
      {supported && key === null && <p>{t('settings.webPushIsNot')}</p>}
      {supported && key && (
        <button type="button" aria-pressed={subscribed} onClick={() => void (subscribed ? turnOff() : turnOn())}>
          {subscribed ? t('settings.pushTurnOff') : t('settings.pushTurnOn')}
        </button>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function WebhookSettings() {
  const { t, rich } = useI18n();
  const [url, setUrl] = useState('');
  const [current, setCurrent] = useState<string | null>(null);
  const [secret, setSecret] = useState<string>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    bff<{ url: string }>('/api/webhook').then(
      (w) => {
        setCurrent(w.url);
        setUrl(w.url);
      },
      () => setCurrent(null),
    );
  }, []);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    try {
      const saved = await bff<{ url: string; secret: string }>('/api/webhook', { method: 'PUT', body: { url } });
      setCurrent(saved.url);
      setSecret(saved.secret);
      track('webhook_set');
    } catch (err) {
      setError(err instanceof ProblemError ? (err.byPointer()['/url'] ?? err.message) : t('settings.savingFailed'));
    }
  };
  const remove = async () => {
    await bff('/api/webhook', { method: 'DELETE' });
    setCurrent(null);
    setUrl('');
    setSecret(undefined);
  };
  return (
    <section aria-labelledby="webhook-heading">
      <h2 id="webhook-heading">{t('settings.webhook')}</h2>
      <form onSubmit={save} noValidate>
        <Field id="webhook-url" label={t('settings.endpointUrl')} error={error} hint={t('settings.webhookHint')}>
          {(p) => <input {...p} type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder={t('settings.httpsExampleComHooks')} />}
        </Field>
        <div className="actions">
          <button type="submit">{t('settings.saveWebhook')}</button>
          {current && (
            <button type="button" className="danger" onClick={() => void remove()}>
              {t('settings.removeWebhook')}
            </button>
          )}
        </div>
      </form>
      {secret && (
        <p role="status">
          {rich('settings.signingSecret', { secret: <code>{secret}</code> })}
        </p>
      )}
    </section>
  );
}

/** The calendar feed: a secret URL calendar apps subscribe to, made, rotated and revoked here.
 * The links are shown on this page's own origin (the API answers with the address it was
 * reached at, which behind the web app is an internal one). */
function CalendarFeedSettings() {
  const { t } = useI18n();
  const [path, setPath] = useState<string | null>();
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string>();
  const show = (feed: { url: string }) => setPath(new URL(feed.url).pathname);
  useEffect(() => {
    bff<{ url: string }>('/api/calendar-feed').then(show, () => setPath(null));
  }, []);
  const rotate = async () => {
    setError(undefined);
    try {
      show(await bff<{ url: string }>('/api/calendar-feed', { method: 'POST', body: {} }));
      setCopied(false);
      track('calendar_feed', path ? 'rotated' : 'made');
    } catch {
      setError(t('settings.feedFailed'));
    }
  };
  const revoke = async () => {
    await bff('/api/calendar-feed', { method: 'DELETE' });
    setPath(null);
    track('calendar_feed', 'revoked');
  };
  const https = `${window.location.origin}${path ?? ''}`;
  const webcal = `webcal://${window.location.host}${path ?? ''}`;
  return (
    <section aria-labelledby="calendar-heading">
      <h2 id="calendar-heading">{t('settings.calendarFeed')}</h2>
      <p className="hint">
        {t('settings.subscribeToYourReminders')}
      </p>
      {path && (
        <>
          <p>
            <a href={webcal}>{t('settings.subscribeWebcal')}</a>
          </p>
          <Field id="feed-url" label={t('settings.feedUrl')} hint={t('settings.feedHint')}>
            {(p) => <input {...p} readOnly value={https} onFocus={(e) => e.target.select()} />}
          </Field>
        </>
      )}
      <div className="actions">
        {path && (
          <button
            type="button"
            onClick={() =>
              void navigator.clipboard?.writeText(https).then(
                () => setCopied(true),
                () => setCopied(false),
              )
            }
          >
            {t('settings.copyLink')}
          </button>
        )}
        <button type="button" onClick={() => void rotate()}>
          {path ? t('settings.feedNewLink') : t('settings.feedMakeLink')}
        </button>
        {path && (
          <button type="button" className="danger" onClick={() => void revoke()}>
            {t('settings.turnTheFeedOff')}
          </button>
        )}
        {copied && <span role="status">{t('settings.copied')}</span>}
        {error && <span role="alert">{error}</span>}
      </div>
    </section>
  );
}

/** What `POST /api/v1/tasks/import` answers. */
interface ImportAnswer {
  dryRun: boolean;
  tasks: Array<{ id: string | null; uid: string | null; reminder: string; task: { name: string; timeZone: string }; occurrences: string[] }>;
  skipped: Array<{ uid: string | null; summary: string | null; reason: string }>;
}

/** Import a calendar file (.ics): a dry run shows each reminder it would make and what it
 * skips and why; Import makes them. */
function CalendarImport() {
  const { t, rich, locale } = useI18n();
  const { settings, announce } = useApp();
  const [file, setFile] = useState<{ name: string; text: string }>();
  const [answer, setAnswer] = useState<ImportAnswer>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const send = async (text: string, dryRun: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      const result = await bff<ImportAnswer>('/api/tasks/import', { method: 'POST', body: { calendar: text, timeZone: settings.timeZone, dryRun } });
      setAnswer(result);
      track('ics_import', dryRun ? 'dryRun' : 'created');
      if (!dryRun) announce(t('settings.imported', { count: result.tasks.length }));
    } catch (err) {
      setAnswer(undefined);
      setError(err instanceof ProblemError ? (err.byPointer()['/calendar'] ?? err.message) : t('settings.readFailed'));
    } finally {
      setBusy(false);
    }
  };
  const choose = async (chosen: File | undefined) => {
    setAnswer(undefined);
    if (!chosen) return setFile(undefined);
    const text = await chosen.text();
    setFile({ name: chosen.name, text });
    await send(text, true);
  };
  const created = answer && !answer.dryRun;
  return (
    <section aria-labelledby="import-heading">
      <h2 id="import-heading">{t('settings.importACalendar')}</h2>
      <p className="hint">
        {t('settings.aCalendarFileIcs')}
      </p>
      <Field id="import-file" label={t('settings.calendarFile')} error={error}>
        {(p) => <input {...p} type="file" accept=".ics,text/calendar" onChange={(e) => void choose(e.target.files?.[0])} />}
      </Field>
      {answer && (
        <div aria-live="polite">
          <h3>{t(created ? 'settings.importedFrom' : 'settings.importIn', { file: file?.name ?? t('settings.theFile') })}</h3>
          {answer.tasks.length === 0 ? (
            <p>{t('settings.nothingToRemindYou')}</p>
          ) : (
            <ul className="import-list">
              {answer.tasks.map((item, i) => (
                <li key={`${item.uid ?? ''}-${i}`}>
                  <strong>{item.task.name}</strong> <span className="subtle">· {item.reminder}</span>
                  {item.occurrences[0] && (
                    <div className="subtle">
                      {rich(item.occurrences.length > 1 ? 'settings.importNextThen' : 'settings.importNext', {
                        first: <time dateTime={item.occurrences[0]}>{dateTime(item.occurrences[0], settings.timeZone, locale)}</time>,
                        rest: item.occurrences
                          .slice(1)
                          .map((o) => dateTime(o, settings.timeZone, locale))
                          .join(', '),
                      })}
                    </div>
                  )}
                </li>
              ))}
            </ul>
          )}
          {answer.skipped.length > 0 && (
            <>
              <h4>{t('settings.notImported')}</h4>
              <ul className="import-list">
                {answer.skipped.map((s, i) => (
                  <li key={`${s.uid ?? ''}-${i}`}>
                    <strong>{s.summary ?? s.uid ?? t('settings.anEntry')}</strong>: <span className="subtle">{s.reason}</span>
                  </li>
                ))}
              </ul>
            </>
          )}
          {!created && answer.tasks.length > 0 && file && (
            <div className="actions">
              <button type="button" className="primary" disabled={busy} onClick={() => void send(file.text, false)}>
                {t('settings.importCount', { count: answer.tasks.length })}
              </button>
            </div>
          )}
        </div>
      )}
    </section>
  );
}
