// Settings: defaults for new tasks (email, phone), the time zone screens use, web push for
// this browser, the webhook endpoint, and feature-usage telemetry (on unless opted out).

import { useEffect, useState, type FormEvent } from 'react';
import { bff, ProblemError } from '../api';
import { Field } from '../components/Field';
import { useApp } from '../state';
import { timeZones } from '../settings';
import { track } from '../telemetry';

export function SettingsScreen() {
  const { settings, updateSettings, announce } = useApp();
  const [draft, setDraft] = useState(settings);
  const [saved, setSaved] = useState(false);
  const save = (e: FormEvent) => {
    e.preventDefault();
    updateSettings(draft);
    setSaved(true);
    announce('Settings saved');
  };
  return (
    <>
      <h1 tabIndex={-1}>Settings</h1>
      <form onSubmit={save} className="settings" noValidate>
        <h2>Defaults for new tasks</h2>
        <Field id="default-email" label="Email address" hint="Kept in this browser only.">
          {(p) => <input {...p} type="email" autoComplete="email" value={draft.email} onChange={(e) => setDraft({ ...draft, email: e.target.value })} />}
        </Field>
        <Field id="default-phone" label="Phone number" hint="With the country code, e.g. +1 407 555 1212.">
          {(p) => <input {...p} type="tel" autoComplete="tel" value={draft.phone} onChange={(e) => setDraft({ ...draft, phone: e.target.value })} />}
        </Field>
        <Field id="time-zone" label="Time zone">
          {(p) => (
            <select {...p} value={draft.timeZone} onChange={(e) => setDraft({ ...draft, timeZone: e.target.value })}>
              {timeZones().map((z) => (
                <option key={z} value={z}>
                  {z}
                </option>
              ))}
            </select>
          )}
        </Field>
        <label className="check">
          <input type="checkbox" checked={draft.telemetry} onChange={(e) => setDraft({ ...draft, telemetry: e.target.checked })} /> Share
          anonymous feature usage (which features are used, never what you write or who you are)
        </label>
        <div className="actions">
          <button type="submit" className="primary">
            Save settings
          </button>
          {saved && <span role="status">Saved.</span>}
        </div>
      </form>
      <PushSettings />
      <WebhookSettings />
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
