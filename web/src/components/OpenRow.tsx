// An open reminder's row, as Today and the Inbox list it: the task, when it was due (and
// whether it was sent again), marked overdue where it waited too long, with Done and Snooze;
// the `d` and `s` shortcuts act on it while it holds focus, and on a phone a swipe does
// (SwipeRow).

import type { Occurrence } from '../api';
import { useI18n } from '../i18n/react';
import { usePrefs } from '../prefs';
import { Link } from '../router';
import { OccurrenceActions } from './OccurrenceActions';
import { RelativeTime } from './RelativeTime';
import { SwipeRow } from './SwipeRow';

export function OpenRow({ occurrence: o, overdue = false, onDone }: { occurrence: Occurrence; overdue?: boolean; onDone: (o: Occurrence) => void }) {
  const { t, rich } = useI18n();
  const { shortcuts } = usePrefs();
  return (
    <SwipeRow className={overdue ? 'row open overdue' : 'row open'} data-key={o.key} data-shortcut-item="">
      <div className="grow">
        <Link to={`/tasks/${o.taskId}`}>{o.taskName}</Link>
        {overdue && <span className="tag overdue">{t('today.overdue')}</span>}
        <div className="subtle">
          {rich('common.due', { when: <RelativeTime at={o.dueAt} /> })}
          {o.snoozedFrom && t('common.sentAgain')}
        </div>
      </div>
      <OccurrenceActions taskId={o.taskId} dueAt={o.dueAt} name={o.taskName ?? t('common.reminder')} onDone={onDone} keys={shortcuts} />
    </SwipeRow>
  );
}
