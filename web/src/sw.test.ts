// The service worker file itself (public/sw.js), run against a fake `self`: a push shows its
// notification with the Done and Snooze buttons, and a button posts its own token to
// /act/{token} without a session; a click elsewhere opens the app.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';

type Listener = (event: Record<string, unknown>) => void;

function loadWorker() {
  const listeners = new Map<string, Listener>();
  const shown: Array<{ title: string; options: Record<string, unknown> }> = [];
  const opened: string[] = [];
  const self = {
    addEventListener: (type: string, fn: Listener) => listeners.set(type, fn),
    registration: {
      showNotification: async (title: string, options: Record<string, unknown>) => {
        shown.push({ title, options });
      },
    },
    clients: {
      matchAll: async () => [],
      openWindow: async (path: string) => {
        opened.push(path);
      },
    },
  };
  const fetch = vi.fn(async () => new Response('{}', { status: 200 }));
  const code = readFileSync(join(__dirname, '..', 'public', 'sw.js'), 'utf8');
  new Function('self', 'fetch', code)(self, fetch);
  const dispatch = async (type: string, event: Record<string, unknown>) => {
    const waits: Promise<unknown>[] = [];
    listeners.get(type)?.({ ...event, waitUntil: (p: Promise<unknown>) => waits.push(p) });
    await Promise.all(waits);
  };
  return { dispatch, shown, opened, fetch };
}

const payload = {
  title: 'Reminder: Take the pills',
  body: 'Sat 5 Dec, 09:00',
  taskId: 'tsk_1',
  dueAt: '2026-12-05T08:00:00Z',
  tag: 'tsk_1@2026-12-05T08:00:00Z/push/sub_1',
  actions: [
    { action: 'done', title: 'Done', token: 'tok-done' },
    { action: 'snooze', title: 'Snooze 10 minutes', token: 'tok-snooze' },
  ],
};

it('shows a push with its buttons and acts on one with its token, without a session', async () => {
  const worker = loadWorker();
  await worker.dispatch('push', { data: { json: () => payload } });
  expect(worker.shown).toHaveLength(1);
  const { title, options } = worker.shown[0]!;
  expect(title).toBe('Reminder: Take the pills');
  expect(options.actions).toEqual([
    { action: 'done', title: 'Done' },
    { action: 'snooze', title: 'Snooze 10 minutes' },
  ]);
  expect(options.tag).toBe(payload.tag);

  const close = vi.fn();
  await worker.dispatch('notificationclick', { action: 'snooze', notification: { data: options.data, close } });
  expect(close).toHaveBeenCalled();
  expect(worker.fetch).toHaveBeenCalledWith('/act/tok-snooze', {
    method: 'POST',
    headers: { accept: 'application/json' },
    credentials: 'omit',
  });
  expect(worker.opened).toEqual([]);

  // A click on the notification itself opens the task.
  await worker.dispatch('notificationclick', { action: '', notification: { data: options.data, close } });
  expect(worker.fetch).toHaveBeenCalledTimes(1);
  expect(worker.opened).toEqual(['/tasks/tsk_1']);
});

it('shows a push without actions as a plain notification', async () => {
  const worker = loadWorker();
  await worker.dispatch('push', { data: { json: () => ({ title: 'Reminder: Tea' }) } });
  expect(worker.shown[0]!.options.actions).toEqual([]);
  await worker.dispatch('notificationclick', { action: 'done', notification: { data: worker.shown[0]!.options.data, close: () => {} } });
  expect(worker.fetch).not.toHaveBeenCalled();
  expect(worker.opened).toEqual(['/inbox']);
});
