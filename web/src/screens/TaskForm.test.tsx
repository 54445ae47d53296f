import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { emptyForm, type TaskForm } from '../recurrence';
import { RouterProvider } from '../router';
import { AppProvider } from '../state';
import { TaskFormView } from './TaskForm';

type Handler = (path: string, init: RequestInit) => { status: number; body?: unknown };

function mockFetch(handler: Handler) {
  const calls: Array<{ path: string; init: RequestInit }> = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push({ path: input, init });
      const { status, body } = handler(input, init);
      return new Response(body === undefined ? null : JSON.stringify(body), {
        status,
        headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' },
      });
    }),
  );
  return calls;
}

function renderForm(changes: Partial<TaskForm> = {}, id?: string) {
  const initial = { ...emptyForm({ timeZone: 'Europe/Berlin', now: new Date('2026-12-01T08:30:00Z') }), name: 'Stand-up', ...changes };
  return render(
    <RouterProvider>
      <AppProvider user="alice" serverTelemetry={false}>
        <TaskFormView id={id} initial={initial} />
      </AppProvider>
    </RouterProvider>,
  );
}

beforeEach(() => {
  vi.stubGlobal('EventSource', undefined);
  vi.stubGlobal('requestAnimationFrame', (f: () => void) => setTimeout(f, 0));
});

afterEach(() => {
  vi.unstubAllGlobals();
});

const ok = (path: string): { status: number; body?: unknown } => {
  if (path.startsWith('/bff/api/notifications')) return { status: 200, body: { notifications: [], unread: 0 } };
  if (path === '/bff/api/me')
    return {
      status: 200,
      body: { timeZone: null, email: null, phone: null, quietHours: [], channels: { email: false, sms: false, push: false, inApp: true, webhook: false }, telemetry: true },
    };
  if (path === '/bff/preview')
    return {
      status: 200,
      body: { occurrences: [{ at: '2026-12-07T08:00:00Z', local: '2026-12-07T09:00' }, { at: '2027-03-29T07:00:00Z', note: '02:30 does not exist on 29 March' }] },
    };
  return { status: 404, body: { status: 404 } };
};

it('shows the live preview with its DST note', async () => {
  mockFetch(ok);
  renderForm();
  expect(await screen.findByText(/does not exist on 29 March/)).toBeTruthy();
  expect(screen.getByRole('heading', { name: 'Next occurrences' })).toBeTruthy();
});

it('offers weekdays, day of month and end choices as the period changes', async () => {
  mockFetch(ok);
  renderForm();
  fireEvent.click(screen.getByLabelText('Repeating'));
  expect(screen.getByRole('group', { name: 'On' })).toBeTruthy();
  expect(screen.getByLabelText(/mon/i)).toBeTruthy();
  fireEvent.change(screen.getByLabelText('Period'), { target: { value: 'month' } });
  expect(screen.getByLabelText('The last day')).toBeTruthy();
  expect(screen.getByLabelText('Days')).toBeTruthy();
  fireEvent.click(screen.getByLabelText('After a number of times'));
  expect(screen.getByLabelText('Number of times')).toBeTruthy();
});

it('shows each server validation error next to its field and focuses the first', async () => {
  const calls = mockFetch((path, init) => {
    if (path === '/bff/tasks' && init.method === 'POST')
      return {
        status: 422,
        body: {
          type: 'https://chime.dev/problems/validation',
          title: 'The request has invalid fields',
          status: 422,
          errors: [
            { pointer: '/repeats/frequency', detail: 'frequency is a whole number from 1 to 1000' },
            { pointer: '/notify/email', detail: 'not an email address' },
          ],
        },
      };
    return ok(path);
  });
  renderForm();
  fireEvent.click(screen.getByLabelText('Repeating'));
  fireEvent.change(screen.getByLabelText('Every'), { target: { value: '0' } });
  fireEvent.click(screen.getByLabelText('Email'));
  fireEvent.change(screen.getByLabelText('Email address'), { target: { value: 'nope' } });
  await act(async () => {
    fireEvent.click(screen.getByRole('button', { name: 'Create task' }));
  });
  const every = screen.getByLabelText('Every');
  await waitFor(() => expect(every.getAttribute('aria-invalid')).toBe('true'));
  expect(document.getElementById(every.getAttribute('aria-describedby')!)?.textContent).toMatch(/whole number/);
  const email = screen.getByLabelText('Email address');
  expect(document.getElementById(email.getAttribute('aria-describedby')!)?.textContent).toBe('not an email address');
  await waitFor(() => expect(document.activeElement).toBe(every));
  const post = calls.find((c) => c.path === '/bff/tasks');
  expect(post?.init.headers).toMatchObject({ 'x-csrf-token': expect.any(String) });
  expect(JSON.parse(String(post?.init.body))).toMatchObject({ repeats: { frequency: '0' }, notify: { email: 'nope' } });
});

const destinations = [
  { id: 'dst_phone', name: 'Phone', channel: 'ntfy', url: 'ntfys://…@ntfy.example.com/alerts', createdAt: '2026-12-01T10:00:00Z' },
  { id: 'dst_team', name: 'Team', channel: 'slack', url: 'slack://…/…/…', createdAt: '2026-12-02T10:00:00Z' },
];

/** The server with the user's destinations, answering a saved task with its id. */
const withDestinations = (list: unknown[]) => (path: string, init: RequestInit) => {
  if (path === '/bff/api/destinations') return { status: 200, body: { destinations: list } };
  if (path.startsWith('/bff/tasks') && (init.method === 'POST' || init.method === 'PUT')) return { status: 201, body: { id: 'tsk_1' } };
  return ok(path);
};

const savedBody = (calls: Array<{ path: string; init: RequestInit }>) =>
  JSON.parse(String(calls.find((c) => c.path.startsWith('/bff/tasks') && c.init.method !== undefined && c.init.method !== 'GET')?.init.body));

it('offers the user’s destinations by name and service, and sends the ones ticked', async () => {
  const calls = mockFetch(withDestinations(destinations));
  renderForm();
  const group = await screen.findByRole('group', { name: 'Also send to' });
  expect(within(group).getAllByRole('checkbox').map((c) => c.closest('label')?.textContent?.trim())).toEqual(['Phone (ntfy)', 'Team (Slack)']);
  fireEvent.click(within(group).getByRole('checkbox', { name: 'Phone (ntfy)' }));
  await act(async () => {
    fireEvent.click(screen.getByRole('button', { name: 'Create task' }));
  });
  await waitFor(() => expect(savedBody(calls).notify.destinations).toEqual(['dst_phone']));
});

it('shows an edited task’s destinations, says one was removed, and drops it on save', async () => {
  const calls = mockFetch(withDestinations(destinations));
  renderForm({ destinations: ['dst_gone', 'dst_team'] }, 'tsk_1');
  const group = await screen.findByRole('group', { name: 'Also send to' });
  expect((within(group).getByRole('checkbox', { name: 'Team (Slack)' }) as HTMLInputElement).checked).toBe(true);
  expect((within(group).getByRole('checkbox', { name: 'Phone (ntfy)' }) as HTMLInputElement).checked).toBe(false);
  expect(group.textContent).toMatch(/removed destination: saving drops it/);
  await act(async () => {
    fireEvent.click(screen.getByRole('button', { name: 'Save changes' }));
  });
  await waitFor(() => expect(calls.some((c) => c.path === '/bff/tasks/tsk_1' && c.init.method === 'PUT')).toBe(true));
  expect(savedBody(calls).notify.destinations).toEqual(['dst_team']);
});

it('points to Settings when the user has no destinations', async () => {
  mockFetch(withDestinations([]));
  renderForm();
  expect(await screen.findByText(/add a destination in Settings/)).toBeTruthy();
  expect(screen.queryByRole('group', { name: 'Also send to' })).toBeNull();
});

it('says the preview’s notes in the chosen language from their parts, the English text kept for a kind it does not know', async () => {
  localStorage.setItem('chime.language', 'de');
  mockFetch((path) =>
    path === '/bff/preview'
      ? {
          status: 200,
          body: {
            occurrences: [
              {
                at: '2027-03-28T01:30:00Z',
                note: '02:30 does not exist on 28 March (the clocks go forward): it fires at 03:30',
                notes: [{ kind: 'dstGap', text: '02:30 does not exist on 28 March (the clocks go forward): it fires at 03:30', date: '2027-03-28', wall: '02:30', firesAt: '03:30' }],
              },
              { at: '2027-04-01T07:00:00Z', note: 'Something new', notes: [{ kind: 'somethingNew', text: 'Something new' }] },
            ],
          },
        }
      : ok(path),
  );
  renderForm();
  expect(await screen.findByText('02:30 gibt es am 28. März nicht (die Uhren werden vorgestellt): sie löst um 03:30 aus')).toBeTruthy();
  expect(screen.getByText('Something new')).toBeTruthy();
});
