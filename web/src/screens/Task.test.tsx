import { render, screen } from '@testing-library/react';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { Task } from '../api';
import { RouterProvider } from '../router';
import { AppProvider } from '../state';
import { TaskScreen } from './Task';

const task: Task = {
  id: 'tsk_1',
  name: 'Water the plants',
  description: null,
  startDate: '2027-01-11T08:00:00Z',
  timeZone: 'Europe/Berlin',
  repeats: null,
  notify: { email: null, sms: null, push: false, inApp: true, webhook: false, destinations: ['dst_phone', 'dst_gone'] },
  missed: { policy: 'fireOnceLate' },
  nextExecutionDate: null,
  createdAt: '2027-01-01T08:00:00Z',
  modifiedAt: '2027-01-01T08:00:00Z',
};

beforeEach(() => {
  vi.stubGlobal('EventSource', undefined);
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string) => {
      const answer = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
      if (path === '/bff/tasks/tsk_1')
        return answer({
          task,
          occurrences: [],
          history: [
            {
              dueAt: '2027-01-11T08:00:00Z',
              firedAt: '2027-01-11T08:00:01Z',
              late: false,
              skipped: false,
              coalesced: 0,
              deliveries: [{ channel: 'ntfy', target: 'dst_phone', outcome: 'sent', attempts: 1, at: '2027-01-11T08:00:02Z' }],
            },
          ],
        });
      if (path === '/bff/api/destinations')
        return answer({ destinations: [{ id: 'dst_phone', name: 'Phone', channel: 'ntfy', url: 'ntfys://…@ntfy.example.com/alerts', createdAt: '' }] });
      if (path.startsWith('/bff/api/notifications')) return answer({ notifications: [], unread: 0 });
      return answer({});
    }),
  );
});

afterEach(() => vi.unstubAllGlobals());

it('names the destinations a task notifies, and each delivery’s destination', async () => {
  render(
    <RouterProvider>
      <AppProvider user="alice" serverTelemetry={false}>
        <TaskScreen id="tsk_1" />
      </AppProvider>
    </RouterProvider>,
  );
  expect((await screen.findByText('Phone (ntfy), a removed destination')).previousElementSibling?.textContent).toBe('Also sends to');
  expect(screen.getByRole('table').textContent).toContain('Sent ntfy · Phone');
});
