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

const WEEKDAYS: Array<[string, string]> = [
  ['monday', 'Mon'],
  ['tuesday', 'Tue'],
  ['wednesday', 'Wed'],
  ['thursday', 'Thu'],
  ['friday', 'Fri'],
  ['saturday', 'Sat'],
  ['sunday', 'Sun'],
];

const CHANNELS: Array<[keyof Channels, string]> = [
  ['inApp', 'In-app inbox'],
  ['email', 'Email'],
  ['sms', 'SMS'],
  ['push', 'Web push'],
  ['webhook', 'Webhook'],
];

export function SettingsScreen() {
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
      announce('Settings saved');
    } catch (err) {
      setErrors(err instanceof ProblemError ? err.byPointer() : { '': 'Saving failed.' });
      announce('Settings not saved');
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
      <h1 tabIndex={-1}>Settings</h1>
      <form onSubmit={(e) => void save(e)} className="settings" noValidate>
        <p className="hint">Saved to your account: the same in every browser and on your phone.</p>
        <h2>Defaults for new tasks</h2>
        <Field id="default-email" label="Email address" error={errors['/email']}>
          {(p) => <input {...p} type="email" autoComplete="email" value={draft.email} onChange={(e) => edit({ ...draft, email: e.target.value })} />}
        </Field>
        <Field id="default-phone" label="Phone number" hint="With the country code, e.g. +1 407 555 1212." error={errors['/phone']}>
          {(p) => <input {...p} type="tel" autoComplete="tel" value={draft.phone} onChange={(e) => edit({ ...draft, phone: e.target.value })} />}
        </Field>
        <fieldset className="channels">
          <legend>Notify new tasks by</legend>
          <div className="radios">
          {CHANNELS.map(([key, label]) => (
            <label key={key} className="check">
              <input
                type="checkbox"
                checked={draft.channels[key]}
                onChange={(e) => edit({ ...draft, channels: { ...draft.channels, [key]: e.target.checked } })}
              />{' '}
              {label}
            </label>
          ))}
          </div>
        </fieldset>
        <Field id="time-zone" label="Time zone" error={errors['/timeZone']}>
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
        <h2>Quiet hours</h2>
        <p className="hint">
          Email, SMS and push wait until quiet hours end, in your time zone; the in-app inbox still shows each reminder on time.
        </p>
        {draft.quietHours.length === 0 && <p>No quiet hours.</p>}
        {draft.quietHours.map((window, i) => (
          <fieldset key={i} className="quiet-window">
            <legend>Quiet hours {i + 1}</legend>
            <div className="weekdays" role="group" aria-label={`Days of quiet hours ${i + 1}`}>
              {WEEKDAYS.map(([day, short]) => (
                <label key={day} className="chip">
                  <input
                    type="checkbox"
                    checked={window.days.includes(day)}
                    onChange={(e) =>
                      setWindow(i, {
                        ...window,
                        days: WEEKDAYS.map(([d]) => d).filter((d) => (d === day ? e.target.checked : window.days.includes(d))),
                      })
                    }
                  />{' '}
                  {short}
                </label>
              ))}
            </div>
            <div className="two">
              <label className="field">
                From
                <input type="time" value={window.from} onChange={(e) => setWindow(i, { ...window, from: e.target.value })} />
              </label>
              <label className="field">
                to
                <input type="time" value={window.to} onChange={(e) => setWindow(i, { ...window, to: e.target.value })} />
              </label>
            </div>
            <div className="actions">
              {window.to <= window.from && <span className="hint">Ends the next day.</span>}
              <button type="button" className="danger small" onClick={() => edit({ ...draft, quietHours: draft.quietHours.filter((_, j) => j !== i) })}>
                Remove
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
          onClick={() => edit({ ...draft, quietHours: [...draft.quietHours, { days: WEEKDAYS.map(([d]) => d), from: '22:00', to: '07:00' }] })}
        >
          Add quiet hours
        </button>
        <h2>Privacy</h2>
        <label className="check">
          <input type="checkbox" checked={draft.telemetry} onChange={(e) => edit({ ...draft, telemetry: e.target.checked })} /> Share
          anonymous feature usage (which features are used, never what you write or who you are)
        </label>
        <div className="actions">
          <button type="submit" className="primary">
            Save settings
          </button>
          {saved && <span role="status">Saved.</span>}
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
      setMessage('Web push is on for this browser.');
      track('push_enabled', 'on');
    } catch (err) {
      setMessage(err instanceof Error ? `Could not turn on web push: ${err.message}` : 'Could not turn on web push.');
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
    setMessage('Web push is off for this browser.');
    track('push_enabled', 'off');
  };

  return (
    <section aria-labelledby="push-heading">
      <h2 id="push-heading">Web push in this browser</h2>
      {!supported && <p>This browser does not support web push.</p>}
      {supported && key === null && <p>Web push is not configured on this server.</p>}
      {supported && key && (
        <button type="button" aria-pressed={subscribed} onClick={() => void (subscribed ? turnOff() : turnOn())}>
          {subscribed ? 'Turn off web push' : 'Turn on web push'}
        </button>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function WebhookSettings() {
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
      setError(err instanceof ProblemError ? (err.byPointer()['/url'] ?? err.message) : 'Saving failed.');
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
      <h2 id="webhook-heading">Webhook</h2>
      <form onSubmit={save} noValidate>
        <Field id="webhook-url" label="Endpoint URL" error={error} hint="Reminders are POSTed here, signed (Standard Webhooks).">
          {(p) => <input {...p} type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://example.com/hooks/chime" />}
        </Field>
        <div className="actions">
          <button type="submit">Save webhook</button>
          {current && (
            <button type="button" className="danger" onClick={() => void remove()}>
              Remove webhook
            </button>
          )}
        </div>
      </form>
      {secret && (
        <p role="status">
          Signing secret (shown once, keep it safe): <code>{secret}</code>
        </p>
      )}
    </section>
  );
}

/** The calendar feed: a secret URL calendar apps subscribe to, made, rotated and revoked here.
 * The links are shown on this page's own origin (the API answers with the address it was
 * reached at, which behind the web app is an internal one). */
function CalendarFeedSettings() {
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
      setError('Making the feed failed. Try again.');
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
      <h2 id="calendar-heading">Calendar feed</h2>
      <p className="hint">
        Subscribe to your reminders in Google Calendar, Apple Calendar or Thunderbird. Anyone with the link can read your tasks: make a
        new link if it leaks.
      </p>
      {path && (
        <>
          <p>
            <a href={webcal}>Subscribe (webcal)</a>
          </p>
          <Field id="feed-url" label="Feed URL" hint="Paste it where your calendar asks for a URL to subscribe to.">
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
            Copy link
          </button>
        )}
        <button type="button" onClick={() => void rotate()}>
          {path ? 'Make a new link' : 'Make a feed link'}
        </button>
        {path && (
          <button type="button" className="danger" onClick={() => void revoke()}>
            Turn the feed off
          </button>
        )}
        {copied && <span role="status">Copied.</span>}
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
      if (!dryRun) announce(`Imported ${result.tasks.length} ${result.tasks.length === 1 ? 'reminder' : 'reminders'}`);
    } catch (err) {
      setAnswer(undefined);
      setError(err instanceof ProblemError ? (err.byPointer()['/calendar'] ?? err.message) : 'Reading the file failed.');
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
      <h2 id="import-heading">Import a calendar</h2>
      <p className="hint">
        A calendar file (.ics) exported from Google Calendar, Apple Calendar, Outlook or Thunderbird: each event or to-do becomes a reminder
        at its alarm (or its start; 09:00 for an all-day one). You see what would be made before anything is.
      </p>
      <Field id="import-file" label="Calendar file" error={error}>
        {(p) => <input {...p} type="file" accept=".ics,text/calendar" onChange={(e) => void choose(e.target.files?.[0])} />}
      </Field>
      {answer && (
        <div aria-live="polite">
          <h3>{created ? `Imported from ${file?.name ?? 'the file'}` : `In ${file?.name ?? 'the file'}`}</h3>
          {answer.tasks.length === 0 ? (
            <p>Nothing to remind you of.</p>
          ) : (
            <ul className="import-list">
              {answer.tasks.map((t, i) => (
                <li key={`${t.uid ?? ''}-${i}`}>
                  <strong>{t.task.name}</strong> <span className="subtle">· {t.reminder}</span>
                  {t.occurrences[0] && (
                    <div className="subtle">
                      next <time dateTime={t.occurrences[0]}>{dateTime(t.occurrences[0], settings.timeZone)}</time>
                      {t.occurrences.length > 1 && `, then ${t.occurrences.slice(1).map((o) => dateTime(o, settings.timeZone)).join(', ')}`}
                    </div>
                  )}
                </li>
              ))}
            </ul>
          )}
          {answer.skipped.length > 0 && (
            <>
              <h4>Not imported</h4>
              <ul className="import-list">
                {answer.skipped.map((s, i) => (
                  <li key={`${s.uid ?? ''}-${i}`}>
                    <strong>{s.summary ?? s.uid ?? 'An entry'}</strong>: <span className="subtle">{s.reason}</span>
                  </li>
                ))}
              </ul>
            </>
          )}
          {!created && answer.tasks.length > 0 && file && (
            <div className="actions">
              <button type="button" className="primary" disabled={busy} onClick={() => void send(file.text, false)}>
                Import {answer.tasks.length} {answer.tasks.length === 1 ? 'reminder' : 'reminders'}
              </button>
            </div>
          )}
        </div>
      )}
    </section>
  );
}
