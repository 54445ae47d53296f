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
import type { MessageKey, Translator } from '../i18n';
import { useI18n } from '../i18n/react';

interface TaskPage {
  task: Task;
  occurrences: string[];
  history: HistoryItem[];
}

const CHANNEL: Record<string, MessageKey> = {
  email: 'channel.email',
  sms: 'channel.sms',
  push: 'channel.push',
  inApp: 'channel.inAppShort',
  webhook: 'channel.webhook',
};

/** A channel's name: Chime's own in the user's language, a destination service's as it is. */
function channelName(channel: string, t: Translator['t']): string {
  const key = CHANNEL[channel];
  return key ? t(key) : (DESTINATION_SERVICES[channel as keyof typeof DESTINATION_SERVICES] ?? channel);
}

/** A destination by name and service (`Phone (ntfy)`), or said to be removed. */
function destinationName(id: string, known: Destination[], t: Translator['t']): string {
  const d = known.find((k) => k.id === id);
  return d ? t('task.destinationName', { name: d.name, service: serviceName(d.channel) }) : t('task.removedDestination');
}

const OUTCOME: Record<Delivery['outcome'], MessageKey> = {
  sent: 'task.outcomeSent',
  pending: 'task.outcomePending',
  deadLettered: 'task.outcomeFailed',
  skipped: 'task.outcomeSkipped',
};

const MISSED: Record<Task['missed']['policy'], MessageKey> = {
  fireOnceLate: 'task.missedOnce',
  fireAll: 'task.missedAll',
  skip: 'task.missedSkip',
};

export function TaskScreen({ id }: { id: string }) {
  const { t, locale } = useI18n();
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
      announce(t('task.deletedAnnounced'));
      navigate('/tasks');
    } catch (err) {
      setActionError(err instanceof Error ? err.message : t('task.deletingFailed'));
    }
  };

  const retry = async (item: HistoryItem, delivery: Delivery) => {
    try {
      await bff(`/api/tasks/${id}/deliveries/retry`, {
        method: 'POST',
        body: { dueAt: item.dueAt, channel: delivery.channel, ...(delivery.target ? { target: delivery.target } : {}) },
      });
      track('dead_letter_retried');
      announce(t('task.retriedAnnounced'));
      reload();
    } catch (err) {
      setActionError(err instanceof ProblemError ? err.message : t('task.retryingFailed'));
    }
  };

  // Skip one occurrence, or restore a skipped or moved one: a new version of the task.
  const change = async (at: string, action: 'skip' | 'restore') => {
    try {
      await bff(`/api/tasks/${id}/occurrences/${encodeURIComponent(at)}/${action}`, { method: 'POST', body: {} });
      track(action === 'skip' ? 'occurrence_skipped' : 'occurrence_restored');
      announce(t(action === 'skip' ? 'task.skippedAnnounced' : 'task.restoredAnnounced', { time: dateTime(at, zone, locale) }));
      reload();
    } catch (err) {
      setActionError(err instanceof ProblemError ? err.message : t('task.changingFailed'));
    }
  };

  // Move one occurrence to a wall-clock time in the task's zone (the BFF reads it there).
  const move = async (at: string, to: string) => {
    try {
      await bff(`/tasks/${id}/occurrences/${encodeURIComponent(at)}/move`, { method: 'POST', body: { to } });
      track('occurrence_moved');
      announce(t('task.movedAnnounced', { time: to.replace('T', ' ') }));
      setMoving(undefined);
      setMoveError(undefined);
      reload();
    } catch (err) {
      setMoveError(err instanceof ProblemError ? (err.byPointer()['/to'] ?? err.message) : t('task.movingFailed'));
    }
  };

  // Add one occurrence at a wall-clock time in the task's zone (RFC 5545 RDATE).
  const add = async (at: string) => {
    try {
      await bff(`/tasks/${id}/occurrences`, { method: 'POST', body: { at } });
      track('occurrence_added');
      announce(t('task.addedAnnounced', { time: at.replace('T', ' ') }));
      setAdding(undefined);
      setAddError(undefined);
      reload();
    } catch (err) {
      setAddError(err instanceof ProblemError ? (err.byPointer()['/at'] ?? err.message) : t('task.addingFailed'));
    }
  };

  if (error) return <><h1 tabIndex={-1}>{t('task.task')}</h1><ErrorMessage error={error} /></>;
  if (!data) return <p aria-busy={loading}>{t('common.loading')}</p>;
  const { task } = data;
  return (
    <>
      <div className="heading-row">
        <h1 tabIndex={-1}>{task.name}</h1>
        <div className="actions">
          <Link to={`/tasks/${id}/edit`} className="button">
            {t('task.edit')}
          </Link>
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            {t('task.delete')}
          </button>
        </div>
      </div>
      {confirming && (
        <div className="banner" role="alertdialog" aria-labelledby="confirm-text">
          <p id="confirm-text">{t('task.confirmDelete', { name: task.name })}</p>
          <button type="button" className="danger" onClick={() => void remove()} autoFocus>
            {t('task.deleteForGood')}
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            {t('common.keepIt')}
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
        <dt>{t('task.starts')}</dt>
        <dd>
          {t(task.floating ? 'task.startsFloating' : 'task.startsIn', { time: dateTime(task.startDate, task.timeZone, locale), zone: task.timeZone })}
        </dd>
        <dt>{t('task.repeats')}</dt>
        <dd>{task.repeats ? describe(fromTask(task, {}), locale) : t('task.repeatsNo')}</dd>
        {task.rrule && !(task.repeats && 'rrule' in task.repeats && fromTask(task, {}).custom) && (
          <>
            <dt>{t('task.asACalendarRule')}</dt>
            <dd>
              <code>{task.rrule}</code>
            </dd>
          </>
        )}
        <dt>{t('task.channels')}</dt>
        <dd>
          {(['inApp', 'email', 'sms', 'push', 'webhook'] as const)
            .filter((c) => task.notify[c])
            .map((c) => channelName(c, t))
            .join(', ') || t('task.channelsNone')}
        </dd>
        {task.notify.destinations && task.notify.destinations.length > 0 && (
          <>
            <dt>{t('task.alsoSendsTo')}</dt>
            <dd className="destinations-sent">
              {destinations
                ? task.notify.destinations.map((d) => destinationName(d, destinations, t)).join(', ')
                : t('task.destinationCount', { count: task.notify.destinations.length })}
            </dd>
          </>
        )}
        {task.nag && (
          <>
            <dt>{t('task.untilDone')}</dt>
            <dd>
              {t('task.nag', { minutes: task.nag.everyMinutes, count: task.nag.times })}
            </dd>
          </>
        )}
        {task.escalate && task.escalate.length > 0 && (
          <>
            <dt>{t('task.escalates')}</dt>
            <dd>
              {t('task.escalation', {
                steps: task.escalate.map((s) => t('task.escalationStep', { channel: channelName(s.channel, t), minutes: s.afterMinutes })).join(t('task.escalationThen')),
              })}
            </dd>
          </>
        )}
        <dt>{t('task.ifMissed')}</dt>
        <dd>{t(MISSED[task.missed.policy])}</dd>
      </dl>

      <section aria-labelledby="next-heading">
        <h2 id="next-heading">{t('task.nextOccurrences')}</h2>
        {data.occurrences.length === 0 ? (
          <p>{t('task.noneEveryOccurrenceIs')}</p>
        ) : (
          <ol className="occurrences">
            {data.occurrences.map((at) => {
              const moved = task.moved?.find((m) => m.to === at);
              // Added on this page (and not also the rule's): removing it is skipping it.
              const added = (task.added ?? []).some((a) => Date.parse(a) === Date.parse(at)) && !moved;
              const changeable = Boolean(task.repeats) || added;
              return (
                <li key={at}>
                  <time dateTime={at}>{dateTime(at, zone, locale)}</time>
                  {moved && <span className="note"> {t('agenda.movedFrom', { from: dateTime(moved.from, zone, locale) })}</span>}
                  {added && <span className="tag">{t('task.added')}</span>}{' '}
                  {changeable && (
                    <button type="button" className="small" onClick={() => change(at, moved ? 'restore' : 'skip')}>
                      {t(moved ? 'task.moveBack' : added ? 'task.remove' : 'task.skip')}
                      <span className="visually-hidden"> {dateTime(at, zone, locale)}</span>
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
                      {t('task.move')}<span className="visually-hidden"> {dateTime(at, zone, locale)}</span>
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
                      <Field id="move-to" label={t('task.moveTo', { zone: task.timeZone })} error={moveError}>
                        {(p) => <input {...p} type="datetime-local" value={moving.to} onChange={(e) => setMoving({ at, to: e.target.value })} />}
                      </Field>
                      <button type="submit" className="small primary">
                        {t('task.saveMove')}</button>{' '}
                      <button type="button" className="small" onClick={() => setMoving(undefined)}>
                        {t('common.cancel')}
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
            {t('task.addATime')}
          </button>
        ) : (
          <form
            className="move"
            onSubmit={(e) => {
              e.preventDefault();
              void add(adding);
            }}
          >
            <Field id="add-at" label={t('task.alsoAt', { zone: task.timeZone })} error={addError}>
              {(p) => <input {...p} type="datetime-local" value={adding} onChange={(e) => setAdding(e.target.value)} />}
            </Field>
            <button type="submit" className="small primary">
              {t('task.add')}</button>{' '}
            <button type="button" className="small" onClick={() => setAdding(undefined)}>
              {t('common.cancel')}
            </button>
          </form>
        )}
        {(task.skipped ?? []).filter((at) => at > new Date().toISOString()).length > 0 && (
          <>
            <h3>{t('task.skipped')}</h3>
            <ul className="occurrences">
              {(task.skipped ?? [])
                .filter((at) => at > new Date().toISOString())
                .map((at) => (
                  <li key={at}>
                    <s>
                      <time dateTime={at}>{dateTime(at, zone, locale)}</time>
                    </s>{' '}
                    <button type="button" className="small" onClick={() => change(at, 'restore')}>
                      {t('task.restore')}<span className="visually-hidden"> {dateTime(at, zone, locale)}</span>
                    </button>
                  </li>
                ))}
            </ul>
          </>
        )}
      </section>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">{t('task.history')}</h2>
        {data.history.length === 0 ? (
          <p>{t('task.nothingHasFiredYet')}</p>
        ) : (
          <div className="table-scroll">
            <table>
              <caption className="visually-hidden">{t('task.eachOccurrenceAndIts')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('task.due')}</th>
                  <th scope="col">{t('task.deliveries')}</th>
                </tr>
              </thead>
              <tbody>
                {data.history.map((item) => (
                  <tr key={item.dueAt}>
                    <td>
                      <time dateTime={item.dueAt}>{dateTime(item.dueAt, zone, locale)}</time>
                      {item.late && <span className="tag warn">{t('task.late')}</span>}
                      {item.skipped && <span className="tag">{t('task.skipped2')}</span>}
                      <OccurrenceState item={item} zone={zone} />
                    </td>
                    <td>
                      <ul className="deliveries">
                        {item.deliveries.map((d) => {
                          const channel = channelName(d.channel, t);
                          // A destination's deliveries name it (their target is its id).
                          const where =
                            d.channel in DESTINATION_SERVICES && d.target && destinations
                              ? ` · ${destinations.find((k) => k.id === d.target)?.name ?? t('task.removedDestination')}`
                              : '';
                          return (
                            <li key={`${d.channel}-${d.target ?? ''}`}>
                              <span className={`status status-${d.outcome}`}>{t(OUTCOME[d.outcome])}</span> {channel}
                              {where}
                              {d.attempts > 1 ? t('task.attempts', { count: d.attempts }) : ''}
                              {d.detail ? <span className="subtle"> · {d.detail}</span> : null}
                              {d.outcome === 'deadLettered' && (
                                <button type="button" className="small" onClick={() => void retry(item, d)}>
                                  {t('common.retry')}<span className="visually-hidden"> {t('task.retryWhat', { channel, where })}</span>
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
  const { t, rich, locale } = useI18n();
  const from = item.snoozedFrom ? t('task.backFromSnooze') : '';
  const at = (instant: string | undefined) => (instant ? <time dateTime={instant}>{dateTime(instant, zone, locale)}</time> : '');
  switch (item.state) {
    case 'acknowledged':
      return (
        <div className="subtle">
          {rich('task.doneAt', { when: at(item.acknowledgedAt) })}
          {item.acknowledgedOn && ` · ${channelName(item.acknowledgedOn, t)}`}
          {from}
        </div>
      );
    case 'snoozed':
      return (
        <div className="subtle">
          {rich('task.snoozedUntil', { when: at(item.snoozedUntil) })}
        </div>
      );
    case 'repeated':
      return (
        <div className="subtle">
          {rich('task.repeatedAt', { when: at(item.snoozedUntil) })}
        </div>
      );
    case 'open':
      return <div className="subtle">{t('task.open')}{from}</div>;
    case 'expired':
      return <div className="subtle">{t('task.notMarkedDone')}{from}</div>;
    default:
      return null;
  }
}
