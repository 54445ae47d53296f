import { act, fireEvent, render, screen } from '@testing-library/react';
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
