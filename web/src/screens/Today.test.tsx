import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { ClockContext } from '../components/RelativeTime';
import { Shortcuts } from '../components/Shortcuts';
import { absoluteTime, clockTime, relativeTime } from '../relative';
import { RouterProvider } from '../router';
import { AppProvider } from '../state';
import { TodayScreen } from './Today';

class QuietEventSource {
  addEventListener() {}
  close() {}
}

// Monday 7 December 2026, 14:00 in Berlin.
const NOW = new Date('2026-12-07T13:00:00Z');
const clock = () => NOW;
// The words are relative.ts's (tested there in several locales); here, in this run's locale.
const say = (at: string) => relativeTime(at, NOW, 'Europe/Berlin');

let open: Array<Record<string, unknown>> = [];
let upcoming: Array<Record<string, unknown>> = [];
const posted: string[] = [];
const asked: string[] = [];

beforeEach(() => {
  posted.length = 0;
  asked.length = 0;
  open = [];
  upcoming = [];
  vi.stubGlobal('EventSource', QuietEventSource);
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit = {}) => {
      const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
      if (init.method === 'POST') {
        posted.push(path);
        const settled = open.find((o) => path.includes(`/tasks/${o.taskId as string}/`));
        open = open.filter((o) => o !== settled);
        return json({ ...settled, state: path.endsWith('/acknowledge') ? 'acknowledged' : 'snoozed', snoozedUntil: '2026-12-07T13:10:00Z' });
      }
      if (path === '/bff/api/me') return json({ timeZone: 'Europe/Berlin' });
      asked.push(path);
      if (path === '/bff/home') return json({ open, upcoming, unread: 0, taskCount: 3 });
      return json({ notifications: [], unread: 0 });
    }),
  );
});

afterEach(() => vi.unstubAllGlobals());

function renderToday() {
  render(
    <ClockContext.Provider value={clock}>
      <RouterProvider>
        <AppProvider user="alice" serverTelemetry={false}>
          <TodayScreen />
          <Shortcuts focusOnArrival={() => undefined} />
        </AppProvider>
      </RouterProvider>
    </ClockContext.Provider>,
  );
}

const occurrence = (taskId: string, taskName: string, dueAt: string) => ({
  key: `${taskId}@${dueAt}`, taskId, taskName, dueAt, seq: 1, state: 'open', firedAt: dueAt, expiresAt: '2026-12-08T00:00:00Z',
});
const next = (taskId: string, taskName: string, at: string, repeats = false) => ({ at, taskId, taskName, timeZone: 'Europe/Berlin', repeats });

it('puts what is open first, marks the overdue one in words, and settles one with Done', async () => {
  open = [occurrence('tsk_1', 'Stretch', '2026-12-07T12:55:00Z'), occurrence('tsk_2', 'Take the pills', '2026-12-07T07:00:00Z')];
  upcoming = [next('tsk_3', 'Call the dentist', '2026-12-07T15:00:00Z'), next('tsk_4', 'Stand-up', '2026-12-08T08:00:00Z', true)];
  renderToday();
  const list = await screen.findByRole('list', { name: 'Open now' });
  const rows = within(list).getAllByRole('listitem');
  expect(rows.map((li) => li.querySelector('a')?.textContent)).toEqual(['Take the pills', 'Stretch']);
  expect(within(rows[0]!).getByText('overdue')).toBeTruthy();
  expect(within(rows[1]!).queryByText('overdue')).toBeNull();
  await waitFor(() => expect(rows[1]!.textContent).toContain('Due 5 min ago'));
  const time = rows[1]!.querySelector('time')!;
  expect(time.getAttribute('dateTime')).toBe('2026-12-07T12:55:00Z');
  // In the profile's zone once it is read (the browser's until then).
  await waitFor(() => expect(time.getAttribute('title')).toBe(absoluteTime('2026-12-07T12:55:00Z', 'Europe/Berlin')));
  expect(within(rows[1]!).getByRole('button', { name: 'Snooze Stretch for 10 min' })).toBeTruthy();
  const later = screen.getByRole('list', { name: 'Later today' });
  expect(later.textContent).toContain('Call the dentist');
  // Under "Later today", the time of day is enough.
  expect(later.textContent).toContain(clockTime('2026-12-07T15:00:00Z', 'Europe/Berlin'));
  expect(later.textContent).not.toContain('today');
  expect(screen.getByRole('list', { name: 'Next' }).textContent).toContain(say('2026-12-08T08:00:00Z'));

  fireEvent.click(within(list).getByRole('button', { name: 'Done: Stretch' }));
  await waitFor(() => expect(within(screen.getByRole('list', { name: 'Open now' })).queryByText('Stretch')).toBeNull());
  expect(posted).toEqual(['/bff/api/tasks/tsk_1/occurrences/2026-12-07T12%3A55%3A00Z/acknowledge']);
});

it('says kindly that nothing is left today, and what is next', async () => {
  upcoming = [next('tsk_4', 'Stand-up', '2026-12-08T08:00:00Z', true)];
  renderToday();
  const empty = await screen.findByText(/Nothing left today\./);
  const at = '2026-12-08T08:00:00Z';
  expect(say(at)).toMatch(/^tomorrow /);
  await waitFor(() =>
    expect(empty.textContent).toBe(`Nothing left today. Next: Stand-up, ${say(at)} (${absoluteTime(at, 'Europe/Berlin')}).`),
  );
  expect(within(empty).getByRole('link', { name: 'Stand-up' })).toBeTruthy();
  expect(screen.queryByRole('list', { name: 'Open now' })).toBeNull();
});

it('speaks German when the user chose it: headings, buttons, relative times and the date', async () => {
  localStorage.setItem('chime.language', 'de');
  open = [occurrence('tsk_1', 'Dehnen', '2026-12-07T12:55:00Z')];
  upcoming = [next('tsk_3', 'Zahnarzt anrufen', '2026-12-07T15:00:00Z')];
  renderToday();
  const list = await screen.findByRole('list', { name: 'Jetzt offen' });
  expect(within(list).getByRole('button', { name: 'Erledigt: Dehnen' })).toBeTruthy();
  await waitFor(() => expect(list.textContent).toContain('Fällig vor 5 Min.'));
  expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Heute');
  expect(screen.getByText(/Montag, 7\. Dezember · Zeiten in /)).toBeTruthy();
  expect(screen.getByRole('list', { name: 'Später heute' })).toBeTruthy();
});

it('renders from one call to the BFF, and d and s settle the focused open reminder, focus moving on', async () => {
  open = [occurrence('tsk_1', 'Stretch', '2026-12-07T12:55:00Z'), occurrence('tsk_2', 'Take the pills', '2026-12-07T12:50:00Z')];
  upcoming = [next('tsk_3', 'Call the dentist', '2026-12-07T15:00:00Z')];
  renderToday();
  const list = await screen.findByRole('list', { name: 'Open now' });
  // The screen's data: the home call alone (the profile and inbox count are the shell's).
  expect(asked.filter((p) => p !== '/bff/api/me' && !p.startsWith('/bff/api/notifications'))).toEqual(['/bff/home']);
  const [pills, stretch] = within(list).getAllByRole('listitem');
  expect(pills!.textContent).toContain('Take the pills');
  within(pills!).getByRole('link').focus();
  fireEvent.keyDown(document.activeElement!, { key: 'd' });
  await waitFor(() => expect(posted).toEqual(['/bff/api/tasks/tsk_2/occurrences/2026-12-07T12%3A50%3A00Z/acknowledge']));
  // Gone at once, and the next one holds the focus, ready for the next key.
  await waitFor(() => expect(document.activeElement?.textContent).toBe('Stretch'));
  expect(stretch!.isConnected).toBe(true);
  fireEvent.keyDown(document.activeElement!, { key: 's' });
  await waitFor(() => expect(posted.at(-1)).toBe('/bff/api/tasks/tsk_1/occurrences/2026-12-07T12%3A55%3A00Z/snooze'));
  await waitFor(() => expect(screen.queryByRole('list', { name: 'Open now' })).toBeNull());
});

it('loads again from the Refresh button and when the app comes back to the foreground', async () => {
  upcoming = [next('tsk_3', 'Call the dentist', '2026-12-07T15:00:00Z')];
  renderToday();
  await screen.findByRole('list', { name: 'Later today' });
  const homes = () => asked.filter((p) => p === '/bff/home').length;
  expect(homes()).toBe(1);
  // Done elsewhere meanwhile, or fired: the next load shows it.
  open = [occurrence('tsk_1', 'Stretch', '2026-12-07T12:55:00Z')];
  fireEvent.click(screen.getByRole('button', { name: 'Refresh' }));
  await screen.findByRole('list', { name: 'Open now' });
  expect(homes()).toBe(2);
  open = [];
  document.dispatchEvent(new Event('visibilitychange'));
  await waitFor(() => expect(screen.queryByRole('list', { name: 'Open now' })).toBeNull());
  expect(homes()).toBe(3);
});
