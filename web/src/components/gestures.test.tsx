import { fireEvent, render, screen } from '@testing-library/react';
import { expect, it, vi } from 'vitest';
import { PULL_ACTS_AT, swipeState, SWIPE_ACTS_AT, SWIPE_MAX } from './gestures';
import { SwipeRow } from './SwipeRow';

it('a sideways drag past the mark is Done (right) or Snooze (left); a mostly vertical one is a scroll', () => {
  expect(swipeState(SWIPE_ACTS_AT - 1, 0)).toEqual({ offset: SWIPE_ACTS_AT - 1, action: null });
  expect(swipeState(SWIPE_ACTS_AT, 10)).toEqual({ offset: SWIPE_ACTS_AT, action: 'done' });
  expect(swipeState(-SWIPE_ACTS_AT - 5, 0)).toEqual({ offset: -SWIPE_ACTS_AT - 5, action: 'snooze' });
  expect(swipeState(400, 0).offset).toBe(SWIPE_MAX);
  expect(swipeState(90, 120)).toEqual({ offset: 0, action: null });
  expect(PULL_ACTS_AT).toBeGreaterThan(0);
});

function row(done: () => void, snooze: () => void) {
  render(
    <ul>
      <SwipeRow className="row open">
        <span>Stretch</span>
        <button type="button" data-action="done" onClick={done}>
          Done
        </button>
        <button type="button" data-action="snooze" onClick={snooze}>
          10 min
        </button>
      </SwipeRow>
    </ul>,
  );
  return screen.getByRole('listitem');
}

const touch = (x: number, y = 0) => ({ pointerType: 'touch', pointerId: 1, clientX: x, clientY: y });

it('a finger swiping a row right clicks its Done button, left its Snooze button; a mouse drag does nothing', () => {
  const done = vi.fn();
  const snooze = vi.fn();
  const li = row(done, snooze);
  fireEvent.pointerDown(li, touch(10));
  fireEvent.pointerMove(li, touch(60));
  // What letting go will do shows under the row while it is dragged.
  expect(li.querySelector('.swipe-hint')?.textContent).toBe('Done');
  fireEvent.pointerUp(li, touch(110));
  expect(done).toHaveBeenCalledTimes(1);
  expect(li.querySelector('.swipe-hint')).toBeNull();

  fireEvent.pointerDown(li, touch(200));
  fireEvent.pointerUp(li, touch(100));
  expect(snooze).toHaveBeenCalledTimes(1);

  // Short of the mark: nothing.
  fireEvent.pointerDown(li, touch(200));
  fireEvent.pointerUp(li, touch(150));
  fireEvent.pointerDown(li, { ...touch(10), pointerType: 'mouse' });
  fireEvent.pointerUp(li, { ...touch(200), pointerType: 'mouse' });
  expect([done.mock.calls.length, snooze.mock.calls.length]).toEqual([1, 1]);
});
