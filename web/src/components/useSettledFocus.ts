// Where focus goes when an open reminder is settled (Done or Snooze) and leaves its list, on
// Today and in the Inbox: to the next one (or the one before, or the list's heading), so the
// keyboard, and the `d` and `s` shortcuts, carry on down the list instead of falling to the
// top of the page. Rows carry their key in `data-key`.

import { useCallback, useEffect, useRef, useState } from 'react';

/** The list's item for an occurrence key. */
function rowOf(list: HTMLUListElement | null, key: string): HTMLElement | undefined {
  return [...(list?.children ?? [])].find((li): li is HTMLElement => li instanceof HTMLElement && li.dataset.key === key);
}

/** `list` goes on the <ul>; call `leaving(key)` as the row with that key is settled. */
export function useSettledFocus(headingId: string) {
  const list = useRef<HTMLUListElement>(null);
  const [focusNext, setFocusNext] = useState<string | null>(null);
  useEffect(() => {
    if (focusNext === null) return;
    (rowOf(list.current, focusNext)?.querySelector('a') ?? document.getElementById(headingId))?.focus();
    setFocusNext(null);
  }, [focusNext, headingId]);
  const leaving = useCallback((key: string) => {
    const row = rowOf(list.current, key);
    const active = document.activeElement;
    // Only when focus was in the row (or nowhere): a click elsewhere keeps its place.
    if (row && (!active || active === document.body || row.contains(active))) {
      const next = (row.nextElementSibling ?? row.previousElementSibling) as HTMLElement | null;
      setFocusNext(next?.dataset.key ?? '');
    }
  }, []);
  return { list, leaving };
}
