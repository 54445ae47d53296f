// The parts of an agenda row that Today and Upcoming share: a repeating task's other times that
// day, and the notes on its occurrences (the API's, and where the user moved one from); and the
// whole row as the agenda and a calendar day list it.

import { noteText, type AgendaRow } from '../agenda';
import { clockTime } from '../relative';
import { useApp } from '../state';
import { dateTime } from '../time';
import { useI18n } from '../i18n/react';
import { Link } from '../router';
import { RelativeTime } from './RelativeTime';

/** At most this many of a task's other times in a day are listed; the rest are counted. */
const LATER_SHOWN = 6;

/** "also at 13:00 and 17:00", for a repeating task's other times that day. */
export function LaterTimes({ row }: { row: AgendaRow }) {
  const { t, rich, locale } = useI18n();
  const { settings } = useApp();
  if (row.later.length === 0) return null;
  const shown = row.later.slice(0, LATER_SHOWN);
  const more = row.later.length - shown.length;
  // The locale's list (`13:00 and 17:00`, `13:00 und 17:00`), its items kept as <time>s.
  const times = shown.map((at) => clockTime(at, settings.timeZone, locale));
  if (more > 0) times.push(t('agenda.more', { count: more }));
  const parts = new Intl.ListFormat(locale, { type: 'conjunction' }).formatToParts(times);
  let n = 0;
  const said = parts.map((part, i) => {
    if (part.type !== 'element') return part.value;
    const at = shown[n++];
    return at ? (
      <time key={i} dateTime={at}>
        {part.value}
      </time>
    ) : (
      part.value
    );
  });
  return <div className="subtle later-times">{rich('agenda.alsoAt', { times: said })}</div>;
}

/** Why an occurrence is not where the rule alone would put it. */
export function RowNotes({ row }: { row: AgendaRow }) {
  const { rich, locale } = useI18n();
  const { settings } = useApp();
  return (
    <>
      {[...new Set(row.notes.map((note) => noteText(note, row.at, settings.timeZone, locale)))].map((text) => (
        <span key={text} className="note">
          <span aria-hidden="true">⚠ </span>
          {text}
        </span>
      ))}
      {row.movedFrom.map((m) => (
        <span key={m.at} className="note">
          {rich(row.later.length > 0 ? 'agenda.timeMovedFrom' : 'agenda.movedFrom', {
            time: clockTime(m.at, settings.timeZone, locale),
            from: <time dateTime={m.from}>{dateTime(m.from, settings.timeZone, locale)}</time>,
          })}
        </span>
      ))}
    </>
  );
}

/** A row of the agenda or of a calendar day: its time, the task, its rule, its other times
 * that day and its notes. */
export function AgendaRowItem({ row }: { row: AgendaRow }) {
  const { t } = useI18n();
  return (
    <li className="row agenda-row">
      <RelativeTime at={row.at} className="when" clock />
      <div className="grow">
        <Link to={`/tasks/${row.taskId}`}>{row.taskName}</Link>
        {row.repeats && <span className="tag rule">{row.rule ?? t('upcoming.repeats')}</span>}
        <LaterTimes row={row} />
        <RowNotes row={row} />
      </div>
    </li>
  );
}
