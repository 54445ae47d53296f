import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import axe from 'axe-core';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { Destination } from '../api';
import { RouterProvider } from '../router';
import { AppProvider } from '../state';
import { DestinationSettings } from './SettingsDestinations';

/** The destinations API as the server answers it, in memory: masks the token, refuses a URL
 * it cannot read, and fails a test send to Slack. */
function fakeServer(initial: Destination[] = []) {
  const list = initial.map((d) => ({ ...d }));
  const calls: Array<{ method: string; path: string; body?: unknown }> = [];
  const json = (status: number, body?: unknown) =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' },
    });
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit = {}) => {
      const method = init.method ?? 'GET';
      const body = init.body ? JSON.parse(String(init.body)) : undefined;
      calls.push({ method, path, body });
      if (path.startsWith('/bff/api/notifications')) return json(200, { notifications: [], unread: 0 });
      if (path === '/bff/api/me') return json(200, {});
      if (path === '/bff/api/destinations' && method === 'GET') return json(200, { destinations: list });
      if (path === '/bff/api/destinations' && method === 'POST') {
        const errors = [];
        if (!body.name) errors.push({ pointer: '/name', detail: 'a destination needs a name' });
        if (!/^(ntfys?|gotifys?|tgram|slack|discord|matrixs?):\/\//.test(body.url)) {
          errors.push({ pointer: '/url', detail: 'not a destination URL: ntfy, gotify, tgram, slack, discord or matrix' });
        }
        if (errors.length > 0) return json(422, { type: 'https://chime.dev/problems/validation', title: 'The request has invalid fields', status: 422, errors });
        const made: Destination = {
          id: `dst_${list.length + 1}`,
          name: body.name,
          channel: body.url.startsWith('slack') ? 'slack' : 'ntfy',
          url: body.url.replace(/\/\/[^@/]*@/, '//…@'),
          createdAt: '2026-12-06T10:00:00Z',
        };
        list.push(made);
        return json(201, made);
      }
      const one = /^\/bff\/api\/destinations\/([^/]+)(\/test)?$/.exec(path);
      const found = one && list.find((d) => d.id === one[1]);
      if (!found) return json(404, { status: 404, title: 'Not found' });
      if (one[2]) return json(200, found.channel === 'slack' ? { sent: false, detail: 'Slack answered 404: no such webhook' } : { sent: true, detail: null });
      if (method === 'PUT') {
        found.name = body.name;
        return json(200, found);
      }
      if (method === 'DELETE') {
        list.splice(list.indexOf(found), 1);
        return json(204);
      }
      return json(200, found);
    }),
  );
  return calls;
}

const phone: Destination = { id: 'dst_phone', name: 'Phone', channel: 'ntfy', url: 'ntfys://…@ntfy.example.com/alerts', createdAt: '2026-12-01T10:00:00Z' };
const team: Destination = { id: 'dst_team', name: 'Team', channel: 'slack', url: 'slack://…/…/…', createdAt: '2026-12-02T10:00:00Z' };

function renderSection() {
  return render(
    <RouterProvider>
      <AppProvider user="alice" serverTelemetry={false}>
        <DestinationSettings />
      </AppProvider>
    </RouterProvider>,
  );
}

beforeEach(() => vi.stubGlobal('EventSource', undefined));
afterEach(() => vi.unstubAllGlobals());

it('says what destinations are for when there are none, with one example of each URL form', async () => {
  fakeServer();
  const { container } = renderSection();
  expect(await screen.findByText(/No destinations yet/)).toBeTruthy();
  const forms = within(screen.getByRole('list', { name: /URL forms/ })).getAllByRole('listitem').map((li) => li.textContent);
  expect(forms).toEqual([
    'ntfy ntfys://tk_mytoken@ntfy.example.com/reminders',
    'Gotify gotifys://gotify.example.com/AppToken',
    'Telegram tgram://123456789:BotToken/-1001234567890',
    'Slack slack://T000/B000/XXXX',
    'Discord discord://webhook_id/webhook_token',
    'Matrix matrixs://user:password@matrix.example.com/#room:example.com',
  ]);
  // Colour contrast needs a layout engine: the browser run (e2e/run.mjs) checks it.
  const result = await axe.run(container, { rules: { 'color-contrast': { enabled: false } } });
  expect(result.violations.map((v) => v.id)).toEqual([]);
});

it('lists each destination with its service and masked URL', async () => {
  fakeServer([phone, team]);
  renderSection();
  const items = within(await screen.findByRole('list', { name: 'Your destinations' })).getAllByRole('listitem');
  expect(items.map((li) => li.querySelector('strong')?.textContent)).toEqual(['Phone', 'Team']);
  expect(items[0]!.textContent).toContain('ntfy');
  expect(items[0]!.textContent).toContain('ntfys://…@ntfy.example.com/alerts');
  expect(items[1]!.textContent).toContain('Slack');
});

it('shows the server’s refusal at the field it names and focuses it, then adds the destination', async () => {
  const calls = fakeServer();
  renderSection();
  await screen.findByText(/No destinations yet/);
  fireEvent.change(screen.getByLabelText('Destination name'), { target: { value: 'Phone' } });
  fireEvent.change(screen.getByLabelText('Destination URL'), { target: { value: 'https://example.com/hook' } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Add destination' })));
  const url = screen.getByLabelText('Destination URL');
  await waitFor(() => expect(url.getAttribute('aria-invalid')).toBe('true'));
  expect(document.getElementById('destination-url-error')?.textContent).toMatch(/not a destination URL/);
  expect(url.getAttribute('aria-describedby')).toContain('destination-url-error');
  expect(screen.getByLabelText('Destination name').getAttribute('aria-invalid')).toBe('false');
  await waitFor(() => expect(document.activeElement).toBe(url));

  fireEvent.change(url, { target: { value: 'ntfys://tk_secret@ntfy.example.com/alerts' } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Add destination' })));
  const list = await screen.findByRole('list', { name: 'Your destinations' });
  expect(list.textContent).toContain('ntfys://…@ntfy.example.com/alerts');
  expect(list.textContent).not.toContain('tk_secret');
  expect((screen.getByLabelText('Destination URL') as HTMLInputElement).value).toBe('');
  expect(calls.find((c) => c.method === 'POST' && c.path === '/bff/api/destinations' && (c.body as { url: string }).url.startsWith('ntfys'))?.body).toEqual({
    name: 'Phone',
    url: 'ntfys://tk_secret@ntfy.example.com/alerts',
  });
});

it('sends a test and says inline, in a live region, whether it went and why not', async () => {
  fakeServer([phone, team]);
  renderSection();
  const send = await screen.findByRole('button', { name: 'Send test to Phone' });
  await act(async () => fireEvent.click(send));
  const phoneResult = document.getElementById('destination-dst_phone-test')!;
  expect(phoneResult.getAttribute('aria-live')).toBe('polite');
  await waitFor(() => expect(phoneResult.textContent).toBe('Test sent to Phone: check that it arrived.'));
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Send test to Team' })));
  await waitFor(() => expect(document.getElementById('destination-dst_team-test')?.textContent).toBe('Not sent: Slack answered 404: no such webhook'));
});

it('removes a destination only once confirmed', async () => {
  const calls = fakeServer([phone, team]);
  renderSection();
   fireEvent.click(await screen.findByRole('button', { name: 'Remove Phone' }));
  const dialog = screen.getByRole('alertdialog');
  expect(dialog.textContent).toMatch(/Remove “Phone”\?/);
  fireEvent.click(within(dialog).getByRole('button', { name: 'Keep it' }));
  expect(screen.queryByRole('alertdialog')).toBeNull();
  expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Remove Phone' }));
  expect(calls.some((c) => c.method === 'DELETE')).toBe(false);

  fireEvent.click(screen.getByRole('button', { name: 'Remove Phone' }));
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Remove for good' })));
  await waitFor(() => expect(screen.queryByRole('button', { name: 'Remove Phone' })).toBeNull());
  expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.path)).toEqual(['/bff/api/destinations/dst_phone']);
  expect(document.activeElement).toBe(screen.getByRole('heading', { name: 'Destinations' }));
});

it('renames a destination and keeps its URL when no new one is typed', async () => {
  const calls = fakeServer([phone]);
  renderSection();
  fireEvent.click(await screen.findByRole('button', { name: 'Edit Phone' }));
  const form = screen.getByRole('form', { name: 'Edit Phone' });
  fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'My phone' } });
  await act(async () => fireEvent.click(within(form).getByRole('button', { name: 'Save Phone' })));
  await screen.findByRole('button', { name: 'Send test to My phone' });
  expect(calls.find((c) => c.method === 'PUT')).toEqual({ method: 'PUT', path: '/bff/api/destinations/dst_phone', body: { name: 'My phone' } });
});
