// Touch gestures for the phone, each a shortcut to a control that is on the screen anyway (so
// a keyboard, a screen reader or a mouse never needs them): a row swiped right is Done, swiped
// left is Snooze (its buttons, clicked), and Today pulled down at the top of the page loads
// again (its Refresh button). Pure state over touch positions, so the thresholds are tested
// without a touch screen; the hooks below attach them.

import { useCallback, useRef, useState, type PointerEvent as ReactPointerEvent, type TouchEvent as ReactTouchEvent } from 'react';

/** How far a row must travel to act, and how far it follows the finger. */
export const SWIPE_ACTS_AT = 80;
export const SWIPE_MAX = 120;
/** How far Today must be pulled past its top to load again. */
export const PULL_ACTS_AT = 70;

/** Where a horizontal drag of `dx` (and `dy`) has got to: the row's offset, and what letting
 * go would do. Mostly vertical: a scroll, not a swipe. */
export function swipeState(dx: number, dy: number): { offset: number; action: 'done' | 'snooze' | null } {
  if (Math.abs(dy) > Math.abs(dx)) return { offset: 0, action: null };
  const offset = Math.max(-SWIPE_MAX, Math.min(SWIPE_MAX, dx));
  const action = offset >= SWIPE_ACTS_AT ? 'done' : offset <= -SWIPE_ACTS_AT ? 'snooze' : null;
  return { offset, action };
}

/**
 * A row that a finger swipes: right clicks its `[data-action="done"]` button, left its
 * `[data-action="snooze"]`. Mouse and pen drags are left alone (they select text).
 */
export function useSwipe() {
  const start = useRef<{ x: number; y: number; id: number } | null>(null);
  const [state, setState] = useState<{ offset: number; action: 'done' | 'snooze' | null }>({ offset: 0, action: null });
  const reset = () => {
    start.current = null;
    setState({ offset: 0, action: null });
  };
  const onPointerDown = (e: ReactPointerEvent<HTMLElement>) => {
    if (e.pointerType !== 'touch') return;
    start.current = { x: e.clientX, y: e.clientY, id: e.pointerId };
  };
  const onPointerMove = (e: ReactPointerEvent<HTMLElement>) => {
    const s = start.current;
    if (!s || s.id !== e.pointerId) return;
    setState(swipeState(e.clientX - s.x, e.clientY - s.y));
  };
  const onPointerUp = (e: ReactPointerEvent<HTMLElement>) => {
    const s = start.current;
    if (!s || s.id !== e.pointerId) return;
    const { action } = swipeState(e.clientX - s.x, e.clientY - s.y);
    reset();
    if (action) e.currentTarget.querySelector<HTMLButtonElement>(`button[data-action="${action}"]:not(:disabled)`)?.click();
  };
  return { state, handlers: { onPointerDown, onPointerMove, onPointerUp, onPointerCancel: reset } };
}

/** Today pulled down from the top of the page: `onRefresh` once the pull passes the mark. */
export function usePullToRefresh(onRefresh: () => void) {
  const start = useRef<number | null>(null);
  const [pull, setPull] = useState(0);
  const onTouchStart = useCallback((e: ReactTouchEvent) => {
    start.current = window.scrollY <= 0 && e.touches.length === 1 ? e.touches[0]!.clientY : null;
  }, []);
  const onTouchMove = useCallback((e: ReactTouchEvent) => {
    if (start.current === null) return;
    setPull(Math.max(0, Math.min(PULL_ACTS_AT * 1.5, (e.touches[0]?.clientY ?? start.current) - start.current)));
  }, []);
  const onTouchEnd = useCallback(() => {
    if (start.current !== null && pull >= PULL_ACTS_AT) onRefresh();
    start.current = null;
    setPull(0);
  }, [pull, onRefresh]);
  return { pull, ready: pull >= PULL_ACTS_AT, handlers: { onTouchStart, onTouchMove, onTouchEnd, onTouchCancel: onTouchEnd } };
}
