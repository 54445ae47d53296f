// An open reminder's row that a finger can swipe: right for Done, left for Snooze (10 min),
// by clicking the row's own buttons (OccurrenceActions marks them `data-action`), which stay the
// accessible way. What letting go will do shows under the row while it is dragged.

import type { ComponentProps } from 'react';
import { useI18n } from '../i18n/react';
import { useSwipe } from './gestures';

export function SwipeRow({ className, children, ...rest }: ComponentProps<'li'>) {
  const { t } = useI18n();
  const { state, handlers } = useSwipe();
  const swiping = state.offset !== 0;
  return (
    <li className={`${className ?? ''} swipe-row`} {...rest} {...handlers}>
      {swiping && (
        <span className={`swipe-hint ${state.offset > 0 ? 'swipe-done' : 'swipe-snooze'}${state.action ? ' ready' : ''}`} aria-hidden="true">
          {t(state.offset > 0 ? 'actions.done' : 'actions.snooze')}
        </span>
      )}
      <div className={swiping ? 'swipe-content swiping' : 'swipe-content'} style={swiping ? { transform: `translateX(${state.offset}px)` } : undefined}>
        {children}
      </div>
    </li>
  );
}
