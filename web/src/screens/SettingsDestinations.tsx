// Settings › Destinations: the user's named Apprise-style URLs (ntfy, Gotify, Telegram, Slack,
// Discord, Matrix) that tasks may also notify. Each is listed with its service and its URL as
// the API answers it (masked: the secrets stay on the server), can be sent a test notification
// (the result shown beside it and announced), edited and, once confirmed, removed. The add form
// shows the server's refusals at the field they name and lists one example of each URL form.

import { useEffect, useRef, useState, type FormEvent } from 'react';
import {
  createDestination,
  deleteDestination,
  listDestinations,
  ProblemError,
  serviceName,
  testDestination,
  updateDestination,
  type Destination,
} from '../api';
import { Field, FormError } from '../components/Field';
import { useApp } from '../state';

/** One example of each URL form, as the help under the URL field shows them. */
export const URL_FORMS: Array<[string, string]> = [
  ['ntfy', 'ntfys://tk_mytoken@ntfy.example.com/reminders'],
  ['Gotify', 'gotifys://gotify.example.com/AppToken'],
  ['Telegram', 'tgram://123456789:BotToken/-1001234567890'],
  ['Slack', 'slack://T000/B000/XXXX'],
  ['Discord', 'discord://webhook_id/webhook_token'],
  ['Matrix', 'matrixs://user:password@matrix.example.com/#room:example.com'],
];

/** A refusal by JSON pointer (`/name`, `/url`); one no field names is under `''`. */
function refusal(err: unknown, fallback: string): Record<string, string> {
  if (!(err instanceof ProblemError)) return { '': fallback };
  const byPointer = err.byPointer();
  return Object.keys(byPointer).length > 0 ? byPointer : { '': err.message };
}

/** After a refusal is shown, the first field it names gets focus (else the form's message). */
function useFocusInvalid(errors: Record<string, string>) {
  const form = useRef<HTMLFormElement>(null);
  const pending = useRef(false);
  useEffect(() => {
    if (!pending.current) return;
    pending.current = false;
    const invalid = form.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    (invalid ?? form.current?.querySelector<HTMLElement>('[role="alert"]'))?.focus();
  }, [errors]);
  return { form, focusNext: () => (pending.current = true) };
}

export function DestinationSettings() {
  const { announce } = useApp();
  // undefined: loading; null: could not be read.
  const [list, setList] = useState<Destination[] | null>();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    let live = true;
    listDestinations().then(
      (destinations) => live && setList(destinations),
      () => live && setList(null),
    );
    return () => {
      live = false;
    };
  }, []);
  const replace = (changed: Destination) => setList((l) => l?.map((d) => (d.id === changed.id ? changed : d)));
  const removed = (gone: Destination) => {
    setList((l) => l?.filter((d) => d.id !== gone.id));
    announce(`Removed ${gone.name}`);
    // Its buttons are gone: the section is where the user was.
    heading.current?.focus();
  };
  return (
    <section aria-labelledby="destinations-heading" className="destinations">
      <h2 id="destinations-heading" tabIndex={-1} ref={heading}>
        Destinations
      </h2>
      <p className="hint">
        Places reminders can also go: an ntfy topic, a Gotify app, a Telegram chat, a Slack or Discord channel, a Matrix room. Add one
        here, then tick it on a task under “Also send to”.
      </p>
      {list === undefined && <p aria-busy="true">Loading destinations…</p>}
      {list === null && <p className="error">Your destinations could not be read. Reload the page to try again.</p>}
      {list && list.length === 0 && (
        <p className="empty">
          No destinations yet. Add one to get reminders on your phone through ntfy or Gotify, or in a Telegram, Slack, Discord or Matrix
          chat, as well as in Chime.
        </p>
      )}
      {list && list.length > 0 && (
        <ul className="list" aria-label="Your destinations">
          {list.map((d) => (
            <DestinationItem key={d.id} destination={d} onChanged={replace} onRemoved={removed} />
          ))}
        </ul>
      )}
      {list && (
        <AddDestination
          onAdded={(d) => {
            setList((l) => [...(l ?? []), d]);
            announce(`Added ${d.name}`);
          }}
        />
      )}
    </section>
  );
}

type TestState = { sending: true } | { sending: false; sent: boolean; text: string };

function DestinationItem({
  destination: d,
  onChanged,
  onRemoved,
}: {
  destination: Destination;
  onChanged: (d: Destination) => void;
  onRemoved: (d: Destination) => void;
}) {
  const [test, setTest] = useState<TestState>();
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [removeError, setRemoveError] = useState<string>();
  const editButton = useRef<HTMLButtonElement>(null);
  const removeButton = useRef<HTMLButtonElement>(null);
  const key = `destination-${d.id}`;

  const send = async () => {
    if (test?.sending) return;
    setTest({ sending: true });
    try {
      const result = await testDestination(d.id);
      setTest(
        result.sent
          ? { sending: false, sent: true, text: `Test sent to ${d.name}: check that it arrived.` }
          : { sending: false, sent: false, text: `Not sent: ${result.detail ?? `${serviceName(d.channel)} refused it.`}` },
      );
    } catch (err) {
      setTest({ sending: false, sent: false, text: `Not sent: ${err instanceof Error && err.message ? err.message : 'try again.'}` });
    }
  };

  const remove = async () => {
    try {
      await deleteDestination(d.id);
      onRemoved(d);
    } catch (err) {
      setRemoveError(err instanceof Error && err.message ? err.message : 'Removing failed. Try again.');
    }
  };

  return (
    <li className="row destination">
      <div className="grow">
        <strong>{d.name}</strong>
        <span className="tag">{serviceName(d.channel)}</span>
        <div>
          <code className="subtle">{d.url}</code>
        </div>
        {/* Present before the result arrives, so that screen readers announce it. */}
        <p className="test-result" id={`${key}-test`} aria-live="polite">
          {test?.sending && 'Sending a test…'}
          {test && !test.sending && <span className={test.sent ? 'status status-sent' : 'status status-deadLettered'}>{test.text}</span>}
        </p>
      </div>
      <div className="actions">
        <button type="button" aria-disabled={test?.sending ?? false} onClick={() => void send()}>
          Send test <span className="visually-hidden">to {d.name}</span>
        </button>
        <button type="button" ref={editButton} aria-expanded={editing} onClick={() => setEditing((e) => !e)}>
          Edit <span className="visually-hidden">{d.name}</span>
        </button>
        <button type="button" ref={removeButton} className="danger" onClick={() => setConfirming(true)}>
          Remove <span className="visually-hidden">{d.name}</span>
        </button>
      </div>
      {confirming && (
        <div className="banner" role="alertdialog" aria-labelledby={`${key}-confirm`}>
          <p id={`${key}-confirm`}>Remove “{d.name}”? Tasks that send to it stop sending there.</p>
          <div className="actions">
            <button type="button" className="danger" onClick={() => void remove()} autoFocus>
              Remove for good
            </button>
            <button
              type="button"
              onClick={() => {
                setConfirming(false);
                setRemoveError(undefined);
                removeButton.current?.focus();
              }}
            >
              Keep it
            </button>
          </div>
          {removeError && (
            <p className="error" role="alert">
              {removeError}
            </p>
          )}
        </div>
      )}
      {editing && (
        <EditDestination
          destination={d}
          onDone={(changed) => {
            if (changed) onChanged(changed);
            setEditing(false);
            editButton.current?.focus();
          }}
        />
      )}
    </li>
  );
}

/** Rename, and replace the URL when a new one is typed (empty: the stored one stays). */
function EditDestination({ destination: d, onDone }: { destination: Destination; onDone: (changed?: Destination) => void }) {
  const { announce } = useApp();
  const [name, setName] = useState(d.name);
  const [url, setUrl] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saving, setSaving] = useState(false);
  const { form, focusNext } = useFocusInvalid(errors);
  const key = `destination-${d.id}`;
  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (saving) return;
    setSaving(true);
    try {
      const changed = await updateDestination(d.id, url.trim() ? { name, url: url.trim() } : { name });
      announce(`Saved ${changed.name}`);
      onDone(changed);
    } catch (err) {
      focusNext();
      setErrors(refusal(err, 'Saving failed. Try again.'));
      setSaving(false);
    }
  };
  return (
    <form ref={form} className="destination-edit" onSubmit={(e) => void save(e)} noValidate aria-label={`Edit ${d.name}`}>
      <FormError message={errors['']} />
      <Field id={`${key}-name`} label="Name" error={errors['/name']}>
        {(p) => <input {...p} value={name} autoFocus onChange={(e) => setName(e.target.value)} />}
      </Field>
      <Field id={`${key}-url`} label="New URL (optional)" hint={`Empty keeps the current one (${d.url}).`} error={errors['/url']}>
        {(p) => (
          <input {...p} type="url" value={url} spellCheck={false} autoCapitalize="off" autoComplete="off" onChange={(e) => setUrl(e.target.value)} />
        )}
      </Field>
      <div className="actions">
        <button type="submit" className="primary">
          Save <span className="visually-hidden">{d.name}</span>
        </button>
        <button type="button" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function AddDestination({ onAdded }: { onAdded: (d: Destination) => void }) {
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saving, setSaving] = useState(false);
  const { form, focusNext } = useFocusInvalid(errors);
  const add = async (e: FormEvent) => {
    e.preventDefault();
    if (saving) return;
    setSaving(true);
    try {
      const added = await createDestination({ name: name.trim(), url: url.trim() });
      setErrors({});
      setName('');
      setUrl('');
      onAdded(added);
    } catch (err) {
      focusNext();
      setErrors(refusal(err, 'Adding failed. Try again.'));
    } finally {
      setSaving(false);
    }
  };
  return (
    <form ref={form} onSubmit={(e) => void add(e)} noValidate aria-labelledby="add-destination-heading" className="settings">
      <h3 id="add-destination-heading">Add a destination</h3>
      <FormError message={errors['']} />
      <Field id="destination-name" label="Destination name" hint="What you call it: Phone, Family chat." error={errors['/name']}>
        {(p) => <input {...p} value={name} autoComplete="off" onChange={(e) => setName(e.target.value)} />}
      </Field>
      <Field
        id="destination-url"
        label="Destination URL"
        hint="One of the forms below, with your own server, token and channel. Chime keeps the token on the server and shows it masked."
        error={errors['/url']}
      >
        {(p) => (
          <input
            {...p}
            type="url"
            value={url}
            spellCheck={false}
            autoCapitalize="off"
            autoComplete="off"
            onChange={(e) => setUrl(e.target.value)}
          />
        )}
      </Field>
      <p className="hint" id="destination-url-forms-title">
        URL forms, one example each (ntfy:// and gotify:// without the s reach a server over plain HTTP):
      </p>
      <ul className="url-forms" aria-labelledby="destination-url-forms-title">
        {URL_FORMS.map(([service, example]) => (
          <li key={service}>
            <span className="service">{service}</span> <code>{example}</code>
          </li>
        ))}
      </ul>
      <div className="actions">
        <button type="submit" className="primary" aria-disabled={saving}>
          Add destination
        </button>
      </div>
    </form>
  );
}
