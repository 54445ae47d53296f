// A task's page: details, next occurrences, and history with each channel's delivery status;
// a dead-lettered delivery can be retried. Edit and delete from here. The destinations it
// notifies are named from the user's list (Settings).

import { useEffect, useState } from 'react';
import {
  bff,
  DESTINATION_SERVICES,
  listDestinations,
  ProblemError,
  serviceName,
  type Delivery,
  type Destination,
  type HistoryItem,
  type Task,
} from '../api';
import { Link, useRouter } from '../router';
import { useApp, useAsync } from '../state';
import { track } from '../telemetry';
import { dateTime } from '../time';
import { describe, fromTask, wallClock } from '../recurrence';
import { Field } from '../components/Field';
import { ErrorMessage } from './common';

interface TaskPage {
  task: Task;
  occurrences: string[];
  history: HistoryItem[];
}

const CHANNEL: Record<Delivery['channel'], string> = {
  email: 'Email',
  sms: 'SMS',
  push: 'Web push',
  inApp: 'In-app',
  webhook: 'Webhook',
  ...DESTINATION_SERVICES,
};

/** A destination by name and service (`Phone (ntfy)`), or said to be removed. */
function destinationName(id: string, known: Destination[]): string {
  const d = known.find((k) => k.id === id);
  return d ? `${d.name} (${serviceName(d.channel)})` : 'a removed destination';
}

const OUTCOME: Record<Delivery['outcome'], string> = {
  sent: 'Sent',
  pending: 'Pending',
  deadLettered: 'Failed',
  skipped: 'Skipped',
};

export function TaskScreen({ id }: { id: string }) {
  const { settings, arrived, announce } = useApp();
  const { navigate } = useRouter();
  const { data, error, loading, reload } = useAsync(() => bff<TaskPage>(`/tasks/${id}`), [id, arrived.length]);
  const destinations = useAsync(listDestinations, []).data;
  const [confirming, setConfirming] = useState(false);
  const [actionError, setActionError] = useState<string>();
  // The occurrence whose move form is open, the time typed, and why a move was refused.
  const [moving, setMoving] = useState<{ at: string; to: string }>();
  const [moveError, setMoveError] = useState<string>();
  // The add-a-time form: the wall-clock time typed (undefined: closed), and why it was refused.
  const [adding, setAdding] = useState<string>();
  const [addError, setAddError] = useState<string>();
  const zone = settings.timeZone;

  // While a delivery is being retried, its outcome will change: look again every few seconds
  // (each answer, a new `data`, starts the next wait).
  const pending = data?.history.some((h) => h.deliveries.some((d) => d.outcome === 'pending')) ?? false;
  useEffect(() => {
    if (!pending) return;
    const timer = setTimeout(reload, 3000);
    return () => clearTimeout(timer);
  }, [pending, data, reload]);

  const remove = async () => {
    try {
      await bff<void>(`/api/tasks/${id}`, { method: 'DELETE' });
      track('task_deleted');
      announce('Task deleted');
      navigate('/tasks');
    } catch (err) {
      setActionError(err instanceof Error ? err.message : 'Deleting failed.');
    }
  };

  const retry = async (item: HistoryItem, delivery: Delivery) => {
    try {
      await bff(`/api/tasks/${id}/deliveries/retry`, {
        method: 'POST',
        body: { dueAt: item.dueAt, channel: delivery.channel, ...(delivery.target ? { target: delivery.target } : {}) },
      });
      track('dead_letter_retried');
      announce('Delivery retried');
      reload();
    } catch (err) {
      setActionError(err instanceof ProblemError ? err.message : 'Retrying failed.');
    }
  };

  // Skip one occurrence, or restore a skipped or moved one: a new version of the task.
  const change = async (at: string, action: 'skip' | 'restore') => {
    try {
      await bff(`/api/tasks/${id}/occurrences/${encodeURIComponent(at)}/${action}`, { method: 'POST', body: {} });
      track(action === 'skip' ? 'occurrence_skipped' : 'occurrence_restored');
      announce(action === 'skip' ? `Skipped ${dateTime(at, zone)}` : `Restored ${dateTime(at, zone)}`);
      reload();
    } catch (err) {
      setActionError(err instanceof ProblemError ? err.message : 'Changing the occurrence failed.');
    }
  };

  // Move one occurrence to a wall-clock time in the task's zone (the BFF reads it there).
  const move = async (at: string, to: string) => {
    try {
      await bff(`/tasks/${id}/occurrences/${encodeURIComponent(at)}/move`, { method: 'POST', body: { to } });
      track('occurrence_moved');
      announce(`Moved to ${to.replace('T', ' ')}`);
      setMoving(undefined);
      setMoveError(undefined);
      reload();
    } catch (err) {
      setMoveError(err instanceof ProblemError ? (err.byPointer()['/to'] ?? err.message) : 'Moving failed.');
    }
  };

  // Add one occurrence at a wall-clock time in the task's zone (RFC 5545 RDATE).
  const add = async (at: string) => {
    try {
      await bff(`/tasks/${id}/occurrences`, { method: 'POST', body: { at } });
      track('occurrence_added');
      announce(`Added ${at.replace('T', ' ')}`);
      setAdding(undefined);
      setAddError(undefined);
      reload();
    } catch (err) {
      setAddError(err instanceof ProblemError ? (err.byPointer()['/at'] ?? err.message) : 'Adding failed.');
    }
  };

  if (error) return <><h1 tabIndex={-1}>Task</h1><ErrorMessage error={error} /></>;
  if (!data) return <p aria-busy={loading}>Loading…</p>;
  const { task } = data;
  return (
    <>
      <div className="heading-row">
        <h1 tabIndex={-1}>{task.name}</h1>
        <div className="actions">
          <Link to={`/tasks/${id}/edit`} className="button">
            Edit
          </Link>
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Delete
          </button>
        </div>
      </div>
      {confirming && (
        <div className="banner" role="alertdialog" aria-labelledby="confirm-text">
          <p id="confirm-text">Delete “{task.name}”? Its history goes too.</p>
          <button type="button" className="danger" onClick={() => void remove()} autoFocus>
            Delete for good
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </div>
      )}
      {actionError && (
        <div className="banner banner-error" role="alert">
          {actionError}
        </div>
      )}
      {task.description && <p>{task.description}</p>}
      <dl className="details">
        <dt>Starts</dt>
        <dd>
          {dateTime(task.startDate, task.timeZone)} ({task.timeZone}
          {task.floating ? ', following the time zone in Settings' : ''})
        </dd>
        <dt>Repeats</dt>
        <dd>{task.repeats ? describe(fromTask(task, {})) : 'No'}</dd>
        {task.rrule && !(task.repeats && 'rrule' in task.repeats && fromTask(task, {}).custom) && (
          <>
            <dt>As a calendar rule</dt>
            <dd>
              <code>{task.rrule}</code>
            </dd>
          </>
        )}
        <dt>Channels</dt>
        <dd>
          {[
            task.notify.inApp && 'in-app',
            task.notify.email && 'email',
            task.notify.sms && 'SMS',
            task.notify.push && 'web push',
            task.notify.webhook && 'webhook',
          ]
            .filter(Boolean)
            .join(', ') || 'none'}
        </dd>
        {task.notify.destinations && task.notify.destinations.length > 0 && (
          <>
            <dt>Also sends to</dt>
            <dd className="destinations-sent">
              {destinations
                ? task.notify.destinations.map((d) => destinationName(d, destinations)).join(', ')
                : `${task.notify.destinations.length} ${task.notify.destinations.length === 1 ? 'destination' : 'destinations'}`}
            </dd>
          </>
        )}
        {task.nag && (
          <>
            <dt>Until done</dt>
            <dd>
              sent again every {task.nag.everyMinutes} min, at most {task.nag.times} {task.nag.times === 1 ? 'time' : 'times'}
            </dd>
          </>
        )}
        {task.escalate && task.escalate.length > 0 && (
          <>
            <dt>Escalates</dt>
            <dd>
              {task.escalate
                .map((s) => `${{ sms: 'SMS', email: 'email', push: 'web push', webhook: 'webhook' }[s.channel]} after ${s.afterMinutes} min`)
                .join(', then ')}{' '}
              if not done
            </dd>
          </>
        )}
        <dt>If missed</dt>
        <dd>{{ fireOnceLate: 'notify once, late', fireAll: 'notify for each', skip: 'skip when too late' }[task.missed.policy]}</dd>
      </dl>

      <section aria-labelledby="next-heading">
        <h2 id="next-heading">Next occurrences</h2>
        {data.occurrences.length === 0 ? (
          <p>None: every occurrence is in the past.</p>
        ) : (
          <ol className="occurrences">
            {data.occurrences.map((at) => {
              const moved = task.moved?.find((m) => m.to === at);
              // Added on this page (and not also the rule's): removing it is skipping it.
              const added = (task.added ?? []).some((a) => Date.parse(a) === Date.parse(at)) && !moved;
              const changeable = Boolean(task.repeats) || added;
              return (
                <li key={at}>
                  <time dateTime={at}>{dateTime(at, zone)}</time>
                  {moved && <span className="note"> moved from {dateTime(moved.from, zone)}</span>}
                  {added && <span className="tag">added</span>}{' '}
                  {changeable && (
                    <button type="button" className="small" onClick={() => change(at, moved ? 'restore' : 'skip')}>
                      {moved ? 'Move back' : added ? 'Remove' : 'Skip'}
                      <span className="visually-hidden"> {dateTime(at, zone)}</span>
                    </button>
                  )}{' '}
                  {changeable && !moved && moving?.at !== at && (
                    <button
                      type="button"
                      className="small"
                      onClick={() => {
                        setMoving({ at, to: wallClock(at, task.timeZone) });
                        setMoveError(undefined);
                      }}
                    >
                      Move<span className="visually-hidden"> {dateTime(at, zone)}</span>
                    </button>
                  )}
                  {moving?.at === at && (
                    <form
                      className="move"
                      onSubmit={(e) => {
                        e.preventDefault();
                        void move(at, moving.to);
                      }}
                    >
                      <Field id="move-to" label={`Move to (${task.timeZone})`} error={moveError}>
                        {(p) => <input {...p} type="datetime-local" value={moving.to} onChange={(e) => setMoving({ at, to: e.target.value })} />}
                      </Field>
                      <button type="submit" className="small primary">
                        Save move
                      </button>{' '}
                      <button type="button" className="small" onClick={() => setMoving(undefined)}>
                        Cancel
                      </button>
                    </form>
                  )}
                </li>
              );
            })}
          </ol>
        )}
        {adding === undefined ? (
          <button
            type="button"
            className="small"
            onClick={() => {
              setAdding(wallClock(data.occurrences[0] ?? task.startDate, task.timeZone));
              setAddError(undefined);
            }}
          >
            Add a time
          </button>
        ) : (
          <form
            className="move"
            onSubmit={(e) => {
              e.preventDefault();
              void add(adding);
            }}
          >
            <Field id="add-at" label={`Also remind me at (${task.timeZone})`} error={addError}>
              {(p) => <input {...p} type="datetime-local" value={adding} onChange={(e) => setAdding(e.target.value)} />}
            </Field>
            <button type="submit" className="small primary">
              Add
            </button>{' '}
            <button type="button" className="small" onClick={() => setAdding(undefined)}>
              Cancel
            </button>
          </form>
        )}
        {(task.skipped ?? []).filter((at) => at > new Date().toISOString()).length > 0 && (
          <>
            <h3>Skipped</h3>
            <ul className="occurrences">
              {(task.skipped ?? [])
                .filter((at) => at > new Date().toISOString())
                .map((at) => (
                  <li key={at}>
                    <s>
                      <time dateTime={at}>{dateTime(at, zone)}</time>
                    </s>{' '}
                    <button type="button" className="small" onClick={() => change(at, 'restore')}>
                      Restore<span className="visually-hidden"> {dateTime(at, zone)}</span>
                    </button>
                  </li>
                ))}
            </ul>
          </>
        )}
      </section>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">History</h2>
        {data.history.length === 0 ? (
          <p>Nothing has fired yet.</p>
        ) : (
          <div className="table-scroll">
            <table>
              <caption className="visually-hidden">Each occurrence and its deliveries</caption>
              <thead>
                <tr>
                  <th scope="col">Due</th>
                  <th scope="col">Deliveries</th>
                </tr>
              </thead>
              <tbody>
                {data.history.map((item) => (
                  <tr key={item.dueAt}>
                    <td>
                      <time dateTime={item.dueAt}>{dateTime(item.dueAt, zone)}</time>
                      {item.late && <span className="tag warn">late</span>}
                      {item.skipped && <span className="tag">skipped</span>}
                      <OccurrenceState item={item} zone={zone} />
                    </td>
                    <td>
                      <ul className="deliveries">
                        {item.deliveries.map((d) => {
                          const channel = CHANNEL[d.channel] ?? d.channel;
                          // A destination's deliveries name it (their target is its id).
                          const where =
                            d.channel in DESTINATION_SERVICES && d.target && destinations
                              ? ` · ${destinations.find((k) => k.id === d.target)?.name ?? 'a removed destination'}`
                              : '';
                          return (
                            <li key={`${d.channel}-${d.target ?? ''}`}>
                              <span className={`status status-${d.outcome}`}>{OUTCOME[d.outcome]}</span> {channel}
                              {where}
                              {d.attempts > 1 ? ` · ${d.attempts} attempts` : ''}
                              {d.detail ? <span className="subtle"> · {d.detail}</span> : null}
                              {d.outcome === 'deadLettered' && (
                                <button type="button" className="small" onClick={() => void retry(item, d)}>
                                  Retry<span className="visually-hidden"> {channel} delivery{where}</span>
                                </button>
                              )}
                            </li>
                          );
                        })}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

/** The occurrence's life in a line: done (when, where), snoozed (until), open, expired. */
function OccurrenceState({ item, zone }: { item: HistoryItem; zone: string }) {
  const from = item.snoozedFrom ? ' · back from a snooze' : '';
  switch (item.state) {
    case 'acknowledged':
      return (
        <div className="subtle">
          Done {item.acknowledgedAt && <time dateTime={item.acknowledgedAt}>{dateTime(item.acknowledgedAt, zone)}</time>}
          {item.acknowledgedOn && ` · ${CHANNEL[item.acknowledgedOn as keyof typeof CHANNEL] ?? item.acknowledgedOn}`}
          {from}
        </div>
      );
    case 'snoozed':
      return (
        <div className="subtle">
          Snoozed until {item.snoozedUntil && <time dateTime={item.snoozedUntil}>{dateTime(item.snoozedUntil, zone)}</time>}
        </div>
      );
    case 'repeated':
      return (
        <div className="subtle">
          Not done, sent again {item.snoozedUntil && <time dateTime={item.snoozedUntil}>{dateTime(item.snoozedUntil, zone)}</time>}
        </div>
      );
    case 'open':
      return <div className="subtle">Open{from}</div>;
    case 'expired':
      return <div className="subtle">Not marked done{from}</div>;
    default:
      return null;
  }
}
