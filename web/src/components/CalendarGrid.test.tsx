import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { RouterProvider } from '../router';
import { AppProvider } from '../state';
import { CalendarGrid } from './CalendarGrid';
import { ClockContext } from './RelativeTime';

class QuietEventSource {
  addEventListener() {}
  close() {}
}

// Monday 7 December 2026, 14:00 in Berlin.
const NOW = new Date('2026-12-07T13:00:00Z');
const at = (taskId: string, taskName: string, instant: string, repeats = false) => ({ at: instant, taskId, taskName, timeZone: 'Europe/Berlin', repeats });
let occurrences: Array<Record<string, unknown>> = [];
const asked: string[] = [];

beforeEach(() => {
  asked.length = 0;
  occurrences = [
    at('tsk_1', 'Call the dentist', '2026-12-07T15:00:00Z'),
    at('tsk_2', 'Rent', '2026-12-31T08:00:00Z'),
    at('tsk_3', 'Book club', '2027-01-12T18:00:00Z'),
  ];
  vi.stubGlobal('EventSource', QuietEventSource);
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string) => {
      asked.push(path);
      const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
      if (path === '/bff/api/me') return json({ timeZone: 'Europe/Berlin' });
      if (path.startsWith('/bff/api/occurrences?')) return json({ occurrences });
      return json({ notifications: [], unread: 0 });
    }),
  );
});

afterEach(() => vi.unstubAllGlobals());

function renderGrid(mode: 'week' | 'month') {
  render(
    <ClockContext.Provider value={() => NOW}>
      <RouterProvider>
        <AppProvider user="alice" serverTelemetry={false}>
          <CalendarGrid mode={mode} />
        </AppProvider>
      </RouterProvider>
    </ClockContext.Provider>,
  );
}

/** A day's accessible name: its visually hidden label (the rest is aria-hidden). */
const name = (el: HTMLElement) => el.querySelector('.visually-hidden')?.textContent ?? '';
const cell = (day: string) => document.querySelector<HTMLElement>(`[data-day="${day}"]`)!;

it('a month grid starts its weeks on the locale’s first day and names each day and its count', async () => {
  renderGrid('month');
  const grid = screen.getByRole('grid', { name: /December 2026/ });
  // The occurrences come from the agenda's API, read a month and more ahead.
  expect(asked).toContain('/bff/api/occurrences?limit=1000&perTask=100');
  await waitFor(() => expect(name(cell('2026-12-07'))).toMatch(/1 reminder/));
  expect(cell('2026-12-07').getAttribute('aria-current')).toBe('date');
  expect(cell('2026-12-07').textContent).toContain('Call the dentist');
  // The locale of this run decides the first column; its week is the grid's rows.
  const columns = within(grid).getAllByRole('columnheader');
  expect(columns.length).toBe(7);
  // Only the focused day is in the tab order.
  expect([...grid.querySelectorAll('[tabindex="0"]')].map((c) => (c as HTMLElement).dataset.day)).toEqual(['2026-12-07']);
});

it('arrows, Home, End and Page Down move the focus, into the next month too, and Enter opens the day', async () => {
  renderGrid('month');
  await waitFor(() => expect(cell('2026-12-31').textContent).toContain('Rent'));
  cell('2026-12-07').focus();
  fireEvent.keyDown(document.activeElement!, { key: 'ArrowRight' });
  expect(document.activeElement).toBe(cell('2026-12-08'));
  fireEvent.keyDown(document.activeElement!, { key: 'ArrowDown' });
  expect(document.activeElement).toBe(cell('2026-12-15'));
  fireEvent.keyDown(document.activeElement!, { key: 'PageDown' });
  // January 2027 is shown now, and its 15th holds the focus.
  expect(screen.getByRole('grid', { name: /January 2027/ })).toBeTruthy();
  expect(document.activeElement).toBe(cell('2027-01-15'));
  fireEvent.keyDown(document.activeElement!, { key: 'ArrowLeft' });
  fireEvent.keyDown(document.activeElement!, { key: 'ArrowLeft' });
  fireEvent.keyDown(document.activeElement!, { key: 'ArrowLeft' });
  expect(document.activeElement).toBe(cell('2027-01-12'));
  fireEvent.keyDown(document.activeElement!, { key: 'Enter' });
  const list = await screen.findByRole('list', { name: /12 January 2027|January 12, 2027/ });
  expect(list.textContent).toContain('Book club');
  expect(cell('2027-01-12').getAttribute('aria-selected')).toBe('true');
  fireEvent.click(screen.getByRole('button', { name: 'Back to the calendar' }));
  expect(document.activeElement).toBe(cell('2027-01-12'));
});

it('a week grid moves by weeks, and a day without reminders says so when opened', async () => {
  renderGrid('week');
  await waitFor(() => expect(cell('2026-12-07').textContent).toContain('Call the dentist'));
  expect(document.querySelectorAll('[data-day]').length).toBe(7);
  fireEvent.click(screen.getByRole('button', { name: /Next week/ }));
  expect(cell('2026-12-14')).toBeTruthy();
  expect(cell('2026-12-07')).toBeNull();
  fireEvent.click(cell('2026-12-15'));
  await screen.findByText('Nothing on this day.');
});

it('a day whose occurrence carries a note is marked, and its list says the note', async () => {
  occurrences = [
    {
      ...at('tsk_2', 'Rent', '2026-12-31T08:00:00Z', true),
      notes: [{ kind: 'shortMonth', text: 'November 2026 has no day 31: that occurrence is skipped', month: '2026-11', day: 31 }],
    },
  ];
  renderGrid('month');
  await waitFor(() => expect(name(cell('2026-12-31'))).toMatch(/1 reminder, with a note$/));
  expect(cell('2026-12-31').querySelector('li.noted')?.textContent).toContain('Rent');
  fireEvent.click(cell('2026-12-31'));
  const list = await screen.findByRole('list', { name: /31 December 2026|December 31, 2026/ });
  expect(list.querySelector('.note')?.textContent).toBe('⚠ November 2026 has no day 31: that occurrence is skipped');
});
