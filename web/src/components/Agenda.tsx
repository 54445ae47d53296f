// The parts of an agenda row that Today and Upcoming share: a repeating task's other times that
// day, and the notes on its occurrences (the API's, and where the user moved one from).

import type { AgendaRow } from '../agenda';
import { clockTime } from '../relative';
import { useApp } from '../state';
import { dateTime } from '../time';

/** At most this many of a task's other times in a day are listed; the rest are counted. */
const LATER_SHOWN = 6;

/** "also at 13:00 and 17:00", for a repeating task's other times that day. */
export function LaterTimes({ row }: { row: AgendaRow }) {
  const { settings } = useApp();
  if (row.later.length === 0) return null;
  const shown = row.later.slice(0, LATER_SHOWN);
  const more = row.later.length - shown.length;
  return (
    <div className="subtle later-times">
      also at{' '}
      {shown.map((at, i) => (
        <span key={at}>
          {i > 0 && (i === shown.length - 1 && more === 0 ? ' and ' : ', ')}
          <time dateTime={at}>{clockTime(at, settings.timeZone)}</time>
        </span>
      ))}
      {more > 0 && ` and ${more} more`}
    </div>
  );
}

/** Why an occurrence is not where the rule alone would put it. */
export function RowNotes({ row }: { row: AgendaRow }) {
  const { settings } = useApp();
  return (
    <>
      {row.notes.map((note) => (
        <span key={note} className="note">
          {note}
        </span>
      ))}
      {row.movedFrom.map((m) => (
        <span key={m.at} className="note">
          {row.later.length > 0 ? `${clockTime(m.at, settings.timeZone)} ` : ''}moved from{' '}
          <time dateTime={m.from}>{dateTime(m.from, settings.timeZone)}</time>
        </span>
      ))}
    </>
  );
}
