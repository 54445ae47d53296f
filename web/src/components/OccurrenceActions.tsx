// Done and Snooze for one fired occurrence (its task and due instant), wherever it is shown.
// Snooze offers 10 minutes, an hour, and tomorrow morning (08:00 in the user's time zone).

import { useState } from 'react';
import { bff, occurrencePath, ProblemError, type Occurrence } from '../api';
import { useApp } from '../state';
import { track } from '../telemetry';
import { timeOf, tomorrowAt } from '../time';

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
  const { settings, announce } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const act = async (action: 'acknowledge' | 'snooze', body: unknown, label: string) => {
    setBusy(true);
    setError(null);
    try {
      const o = await bff<Occurrence>(`${occurrencePath(taskId, dueAt)}/${action}`, { method: 'POST', body });
      track(action === 'acknowledge' ? 'occurrence_done' : 'occurrence_snoozed', label);
      announce(action === 'acknowledge' ? `${name}: done` : `${name}: snoozed until ${timeOf(o.snoozedUntil ?? dueAt, settings.timeZone)}`);
      onDone(o);
    } catch (e) {
      setError(e instanceof ProblemError ? e.message : 'Could not reach the server; try again.');
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
        aria-label={`Done: ${name}`}
        aria-keyshortcuts={keys ? 'd' : undefined}
        onClick={() => void act('acknowledge', {}, 'done')}
      >
        Done
      </button>
      <span className="subtle" aria-hidden="true">
        Snooze
      </span>
      <button
        type="button"
        className="small"
        disabled={busy}
        aria-label={`Snooze ${name} for 10 min`}
        aria-keyshortcuts={keys ? 's' : undefined}
        onClick={() => void act('snooze', { minutes: 10 }, '10min')}
      >
        10 min
      </button>
      <button
        type="button"
        className="small"
        disabled={busy}
        aria-label={`Snooze ${name} for 1 hour`}
        onClick={() => void act('snooze', { minutes: 60 }, '1h')}
      >
        1 hour
      </button>
      <button
        type="button"
        className="small"
        disabled={busy}
        aria-label={`Snooze ${name} until Tomorrow ${MORNING_LABEL}`}
        onClick={() => void act('snooze', { until: tomorrowAt(MORNING, settings.timeZone) }, 'tomorrow')}
      >
        Tomorrow {MORNING_LABEL}
      </button>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
