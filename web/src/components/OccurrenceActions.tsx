// Done and Snooze for one fired occurrence (its task and due instant), wherever it is shown.
// Snooze offers 10 minutes, an hour, and tomorrow morning (08:00 in the user's time zone).

import { useState } from 'react';
import { bff, occurrencePath, ProblemError, type Occurrence } from '../api';
import { useApp } from '../state';
import { track } from '../telemetry';
import { timeOf, tomorrowAt } from '../time';
import { useI18n } from '../i18n/react';

/** Tomorrow morning is 08:00 on the user's wall clock. */
const MORNING = 8;
const MORNING_LABEL = `${String(MORNING).padStart(2, '0')}:00`;

export function OccurrenceActions({
  taskId,
  dueAt,
  name,
  onDone,
  keys = false,
}: {
  taskId: string;
  dueAt: string;
  name: string;
  /** Called with the occurrence as the server answered, once an action took. */
  onDone: (o: Occurrence) => void;
  /** Where the `d` and `s` shortcuts act (shortcuts.ts): Done and the first Snooze say so. */
  keys?: boolean;
}) {
  const { t, locale } = useI18n();
  const { settings, announce } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const act = async (action: 'acknowledge' | 'snooze', body: unknown, label: string) => {
    setBusy(true);
    setError(null);
    try {
      const o = await bff<Occurrence>(`${occurrencePath(taskId, dueAt)}/${action}`, { method: 'POST', body });
      track(action === 'acknowledge' ? 'occurrence_done' : 'occurrence_snoozed', label);
      announce(
        action === 'acknowledge'
          ? t('actions.doneAnnounced', { name })
          : t('actions.snoozedAnnounced', { name, time: timeOf(o.snoozedUntil ?? dueAt, settings.timeZone, locale) }),
      );
      onDone(o);
    } catch (e) {
      setError(e instanceof ProblemError ? e.message : t('common.couldNotReach'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="occurrence-actions">
      <button
        type="button"
        className="small primary"
        disabled={busy}
        data-action="done"
        aria-label={t('actions.doneLabel', { name })}
        aria-keyshortcuts={keys ? 'd' : undefined}
        onClick={() => void act('acknowledge', {}, 'done')}
      >
        {t('actions.done')}
      </button>
      <span className="subtle" aria-hidden="true">
        {t('actions.snooze')}
      </span>
      <button
        type="button"
        className="small"
        disabled={busy}
        data-action="snooze"
        aria-label={t('actions.snooze10Label', { name })}
        aria-keyshortcuts={keys ? 's' : undefined}
        onClick={() => void act('snooze', { minutes: 10 }, '10min')}
      >
        {t('actions.10Min')}
      </button>
      <button
        type="button"
        className="small"
        disabled={busy}
        aria-label={t('actions.snooze60Label', { name })}
        onClick={() => void act('snooze', { minutes: 60 }, '1h')}
      >
        {t('actions.1Hour')}
      </button>
      <button
        type="button"
        className="small"
        disabled={busy}
        aria-label={t('actions.snoozeMorningLabel', { name, time: MORNING_LABEL })}
        onClick={() => void act('snooze', { until: tomorrowAt(MORNING, settings.timeZone) }, 'tomorrow')}
      >
        {t('actions.tomorrowAt', { time: MORNING_LABEL })}
      </button>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
