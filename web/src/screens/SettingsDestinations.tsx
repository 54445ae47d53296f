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
import { useI18n } from '../i18n/react';

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
  const { t } = useI18n();
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
    announce(t('destinations.removed', { name: gone.name }));
    // Its buttons are gone: the section is where the user was.
    heading.current?.focus();
  };
  return (
    <section aria-labelledby="destinations-heading" className="destinations">
      <h2 id="destinations-heading" tabIndex={-1} ref={heading}>
        {t('destinations.destinations')}
      </h2>
      <p className="hint">
        {t('destinations.placesRemindersCanAlso')}
      </p>
      {list === undefined && <p aria-busy="true">{t('destinations.loadingDestinations')}</p>}
      {list === null && <p className="error">{t('destinations.yourDestinationsCouldNot')}</p>}
      {list && list.length === 0 && (
        <p className="empty">
          {t('destinations.noDestinationsYetAdd')}
        </p>
      )}
      {list && list.length > 0 && (
        <ul className="list" aria-label={t('destinations.yourDestinations')}>
          {list.map((d) => (
            <DestinationItem key={d.id} destination={d} onChanged={replace} onRemoved={removed} />
          ))}
        </ul>
      )}
      {list && (
        <AddDestination
          onAdded={(d) => {
            setList((l) => [...(l ?? []), d]);
            announce(t('destinations.added', { name: d.name }));
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
  const { t, rich } = useI18n();
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
          ? { sending: false, sent: true, text: t('destinations.testSent', { name: d.name }) }
          : {
              sending: false,
              sent: false,
              text: t('destinations.notSent', { reason: result.detail ?? t('destinations.refused', { service: serviceName(d.channel) }) }),
            },
      );
    } catch (err) {
      setTest({
        sending: false,
        sent: false,
        text: t('destinations.notSent', { reason: err instanceof Error && err.message ? err.message : t('destinations.tryAgain') }),
      });
    }
  };

  const remove = async () => {
    try {
      await deleteDestination(d.id);
      onRemoved(d);
    } catch (err) {
      setRemoveError(err instanceof Error && err.message ? err.message : t('destinations.removingFailed'));
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
          {test?.sending && t('destinations.sending')}
          {test && !test.sending && <span className={test.sent ? 'status status-sent' : 'status status-deadLettered'}>{test.text}</span>}
        </p>
      </div>
      <div className="actions">
        <button type="button" aria-disabled={test?.sending ?? false} onClick={() => void send()}>
          {rich('destinations.sendTest', { name: <span className="visually-hidden">{t('destinations.to', { name: d.name })}</span> })}
        </button>
        <button type="button" ref={editButton} aria-expanded={editing} onClick={() => setEditing((e) => !e)}>
          {rich('destinations.edit', { name: <span className="visually-hidden">{d.name}</span> })}
        </button>
        <button type="button" ref={removeButton} className="danger" onClick={() => setConfirming(true)}>
          {rich('destinations.remove', { name: <span className="visually-hidden">{d.name}</span> })}
        </button>
      </div>
      {confirming && (
        <div className="banner" role="alertdialog" aria-labelledby={`${key}-confirm`}>
          <p id={`${key}-confirm`}>{t('destinations.confirmRemove', { name: d.name })}</p>
          <div className="actions">
            <button type="button" className="danger" onClick={() => void remove()} autoFocus>
              {t('destinations.removeForGood')}
            </button>
            <button
              type="button"
              onClick={() => {
                setConfirming(false);
                setRemoveError(undefined);
                removeButton.current?.focus();
              }}
            >
              {t('common.keepIt')}
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
  const { t, rich } = useI18n();
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
      announce(t('destinations.saved', { name: changed.name }));
      onDone(changed);
    } catch (err) {
      focusNext();
      setErrors(refusal(err, t('common.savingFailed')));
      setSaving(false);
    }
  };
  return (
    <form ref={form} className="destination-edit" onSubmit={(e) => void save(e)} noValidate aria-label={t('destinations.editLabel', { name: d.name })}>
      <FormError message={errors['']} />
      <Field id={`${key}-name`} label={t('destinations.name')} error={errors['/name']}>
        {(p) => <input {...p} value={name} autoFocus onChange={(e) => setName(e.target.value)} />}
      </Field>
      <Field id={`${key}-url`} label={t('destinations.newUrlOptional')} hint={t('destinations.emptyKeeps', { url: d.url })} error={errors['/url']}>
        {(p) => (
          <input {...p} type="url" value={url} spellCheck={false} autoCapitalize="off" autoComplete="off" onChange={(e) => setUrl(e.target.value)} />
        )}
      </Field>
      <div className="actions">
        <button type="submit" className="primary">
          {rich('destinations.save', { name: <span className="visually-hidden">{d.name}</span> })}
        </button>
        <button type="button" onClick={() => onDone()}>
          {t('common.cancel')}
        </button>
      </div>
    </form>
  );
}

function AddDestination({ onAdded }: { onAdded: (d: Destination) => void }) {
  const { t } = useI18n();
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
      setErrors(refusal(err, t('destinations.addingFailed')));
    } finally {
      setSaving(false);
    }
  };
  return (
    <form ref={form} onSubmit={(e) => void add(e)} noValidate aria-labelledby="add-destination-heading" className="settings">
      <h3 id="add-destination-heading">{t('destinations.addADestination')}</h3>
      <FormError message={errors['']} />
      <Field id="destination-name" label={t('destinations.destinationName')} hint={t('destinations.nameHint')} error={errors['/name']}>
        {(p) => <input {...p} value={name} autoComplete="off" onChange={(e) => setName(e.target.value)} />}
      </Field>
      <Field
        id="destination-url"
        label={t('destinations.destinationUrl')}
        hint={t('destinations.urlHint')}
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
        {t('destinations.urlFormsOneExample')}
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
          {t('destinations.addDestination')}
        </button>
      </div>
    </form>
  );
}
