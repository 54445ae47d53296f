import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { RouterProvider } from '../router';
import { AppProvider } from '../state';
import { InboxScreen } from './Inbox';

/** An EventSource the test drives. */
class FakeEventSource {
  static last: FakeEventSource | undefined;
  listeners = new Map<string, Array<(e: MessageEvent<string>) => void>>();
  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }
  addEventListener(type: string, fn: (e: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  emit(type: string, data: unknown) {
    for (const fn of this.listeners.get(type) ?? []) fn(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
  close() {}
}

const posted: Array<{ path: string; body: unknown }> = [];

beforeEach(() => {
  posted.length = 0;
  vi.stubGlobal('EventSource', FakeEventSource);
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit = {}) => {
      if (init.method === 'POST') {
        posted.push({ path, body: JSON.parse(String(init.body)) });
        return new Response(JSON.stringify({ marked: 1 }), { status: 200 });
      }
      return new Response(JSON.stringify({ notifications: [], unread: 0 }), { status: 200 });
    }),
  );
});

afterEach(() => vi.unstubAllGlobals());

function renderInbox() {
  render(
    <RouterProvider>
      <AppProvider user="alice" serverTelemetry={false}>
        <InboxScreen />
      </AppProvider>
    </RouterProvider>,
  );
}

it('shows a notification arriving over the event stream with the unread count, and marks it read', async () => {
  renderInbox();
  expect(await screen.findByText('No notifications yet.')).toBeTruthy();
  expect(FakeEventSource.last?.url).toBe('/bff/api/notifications/stream');
  act(() =>
    FakeEventSource.last?.emit('notification', {
      id: 'ntf_1',
      taskId: 'tsk_1',
      taskName: 'Tea is ready',
      dueAt: '2026-12-01T09:00:00Z',
      createdAt: '2026-12-01T09:00:00Z',
      read: false,
    }),
  );
  expect(screen.getByRole('link', { name: 'Tea is ready' })).toBeTruthy();
  expect(screen.getByText('1 unread')).toBeTruthy();
  fireEvent.click(screen.getByRole('button', { name: /Mark read/ }));
  expect(await screen.findByText('All caught up.')).toBeTruthy();
  expect(posted).toEqual([{ path: '/bff/api/notifications/read', body: { ids: ['ntf_1'] } }]);
});

it('announces an arriving reminder with a system notification, except during quiet hours', async () => {
  const shown: string[] = [];
  class FakeNotification {
    static permission = 'granted';
    constructor(title: string) {
      shown.push(title);
    }
  }
  vi.stubGlobal('Notification', FakeNotification);
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
  try {
    renderInbox();
    expect(await screen.findByText('No notifications yet.')).toBeTruthy();
    const item = { taskId: 'tsk_1', dueAt: '2026-12-01T09:00:00Z', createdAt: '2026-12-01T09:00:00Z', read: false };
    act(() => FakeEventSource.last?.emit('notification', { ...item, id: 'ntf_1', taskName: 'Loud', silent: false }));
    act(() => FakeEventSource.last?.emit('notification', { ...item, id: 'ntf_2', taskName: 'Quiet', silent: true }));
    expect(screen.getByRole('link', { name: 'Quiet' })).toBeTruthy();
    expect(screen.getByText(/arrived during quiet hours/)).toBeTruthy();
    expect(shown).toEqual(['Loud']);
  } finally {
    delete (document as unknown as { hidden?: boolean }).hidden;
  }
});

it('lists what is open with Done and Snooze, and settles each at once', async () => {
  const open = [
    { key: 'tsk_1@2026-12-01T09:00:00Z', taskId: 'tsk_1', taskName: 'Take the pills', dueAt: '2026-12-01T09:00:00Z', seq: 1, state: 'open' },
    { key: 'tsk_2@2026-12-01T08:00:00Z', taskId: 'tsk_2', taskName: 'Water the plants', dueAt: '2026-12-01T08:00:00Z', seq: 3, state: 'open' },
  ];
  let settled: string[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit = {}) => {
      if (init.method === 'POST') {
        const body = JSON.parse(String(init.body));
        posted.push({ path, body });
        const key = decodeURIComponent(path.split('/tasks/')[1] ?? '').replace('/occurrences/', '@').replace(/\/(acknowledge|snooze)$/, '');
        settled = [...settled, key];
        const state = path.endsWith('/acknowledge') ? 'acknowledged' : 'snoozed';
        return new Response(JSON.stringify({ ...open.find((o) => o.key === key), state, snoozedUntil: '2026-12-01T09:10:00Z' }), { status: 200 });
      }
      if (path.startsWith('/bff/api/occurrences/open')) {
        return new Response(JSON.stringify({ occurrences: open.filter((o) => !settled.includes(o.key)) }), { status: 200 });
      }
      if (path.startsWith('/bff/api/occurrences/snoozed')) {
        const snoozed = open
          .filter((o) => settled.includes(o.key) && o.key.startsWith('tsk_2'))
          .map((o) => ({ ...o, state: 'snoozed', snoozedUntil: '2026-12-01T09:10:00Z' }));
        return new Response(JSON.stringify({ occurrences: snoozed }), { status: 200 });
      }
      const item = (o: (typeof open)[number]) => ({ id: `ntf_${o.taskId}`, taskId: o.taskId, taskName: o.taskName, dueAt: o.dueAt, createdAt: o.dueAt, read: false });
      return new Response(JSON.stringify({ notifications: open.map(item), unread: 2 }), { status: 200 });
    }),
  );
  renderInbox();
  const list = await screen.findByRole('list', { name: 'Open reminders' });
  expect(await within(list).findByRole('link', { name: 'Take the pills' })).toBeTruthy();
  expect(list.querySelectorAll('li')).toHaveLength(2);

  // The `d` and `s` shortcuts act on these buttons (components/Shortcuts.tsx), and they say so.
  const done = screen.getByRole('button', { name: 'Done: Take the pills' });
  expect(done.getAttribute('aria-keyshortcuts')).toBe('d');
  expect(screen.getByRole('button', { name: 'Snooze Take the pills for 10 min' }).getAttribute('aria-keyshortcuts')).toBe('s');

  // Focus that was on a settled item moves to the next one, then to the heading.
  done.focus();
  fireEvent.click(done);
  await waitFor(() => expect(within(list).queryByRole('link', { name: 'Take the pills' })).toBeNull());
  await waitFor(() => expect(document.activeElement).toBe(within(list).getByRole('link', { name: 'Water the plants' })));
  fireEvent.click(screen.getByRole('button', { name: 'Snooze Water the plants for 10 min' }));
  expect(await screen.findByText('Nothing waiting for you.')).toBeTruthy();
  await waitFor(() => expect(document.activeElement).toBe(screen.getByRole('heading', { name: 'Open' })));
  // The snoozed one is listed with when it comes back.
  const snoozedList = await screen.findByRole('list', { name: 'Snoozed reminders' });
  expect(snoozedList.textContent).toContain('Water the plants');
  expect(snoozedList.querySelector('time')?.getAttribute('datetime')).toBe('2026-12-01T09:10:00Z');
  // Done reads its notification; a snooze leaves it unread.
  const notifications = screen.getByRole('list', { name: 'Notifications' });
  const unread = [...notifications.querySelectorAll('li')].filter((li) => li.textContent?.includes('(unread)'));
  expect(unread.map((li) => li.querySelector('a')?.textContent)).toEqual(['Water the plants']);
  expect(posted).toEqual([
    { path: '/bff/api/tasks/tsk_1/occurrences/2026-12-01T09%3A00%3A00Z/acknowledge', body: {} },
    { path: '/bff/api/tasks/tsk_2/occurrences/2026-12-01T08%3A00%3A00Z/snooze', body: { minutes: 10 } },
  ]);
});
