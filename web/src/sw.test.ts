// The service worker file itself (public/sw.js), run against a fake `self`: a push shows its
// notification with the Done and Snooze buttons, and a button posts its own token to
// /act/{token} without a session; a click elsewhere opens the app.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';

type Listener = (event: Record<string, unknown>) => void;

/** A CacheStorage of one cache, keyed by path. */
function fakeCaches() {
  const store = new Map<string, Response>();
  const key = (r: string | { url: string }) => (typeof r === 'string' ? r : new URL(r.url).pathname);
  const cache = {
    put: async (r: string | { url: string }, response: Response) => void store.set(key(r), response),
    addAll: async (paths: string[]) => paths.forEach((p) => store.set(p, new Response(`precached ${p}`))),
  };
  return {
    store,
    api: {
      open: async () => cache,
      keys: async () => ['chime-shell-v1'],
      delete: async () => true,
      match: async (r: string | { url: string }) => store.get(key(r))?.clone(),
    },
  };
}

function loadWorker(online: { up: boolean } = { up: true }) {
  const listeners = new Map<string, Listener>();
  const shown: Array<{ title: string; options: Record<string, unknown> }> = [];
  const opened: string[] = [];
  const caches = fakeCaches();
  const self = {
    location: { origin: 'https://chime.example' },
    skipWaiting: async () => undefined,
    addEventListener: (type: string, fn: Listener) => listeners.set(type, fn),
    registration: {
      showNotification: async (title: string, options: Record<string, unknown>) => {
        shown.push({ title, options });
      },
      // What the browser shows, by tag; closing one takes it away.
      getNotifications: async ({ tag }: { tag?: string } = {}) =>
        shown
          .filter((n) => tag === undefined || n.options.tag === tag)
          .map((n) => ({ close: () => shown.splice(shown.indexOf(n), 1) })),
    },
    clients: {
      matchAll: async () => [],
      openWindow: async (path: string) => {
        opened.push(path);
      },
      claim: async () => undefined,
    },
  };
  const fetch = vi.fn(async (url: string | { url: string }) => {
    if (!online.up) throw new TypeError('offline');
    const path = typeof url === 'string' ? url : new URL(url.url).pathname;
    return new Response(`fresh ${path}`, { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' } });
  });
  const code = readFileSync(join(__dirname, '..', 'public', 'sw.js'), 'utf8');
  new Function('self', 'fetch', 'caches', code)(self, fetch, caches.api);
  const dispatch = async (type: string, event: Record<string, unknown>) => {
    const waits: Promise<unknown>[] = [];
    let responded: Promise<Response> | undefined;
    listeners.get(type)?.({
      ...event,
      waitUntil: (p: Promise<unknown>) => waits.push(p),
      respondWith: (p: Promise<Response>) => {
        responded = p;
      },
    });
    await Promise.all(waits);
    return responded;
  };
  return { dispatch, shown, opened, fetch, caches: caches.store };
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

it('starts offline from the cached shell, and never answers personal calls from a cache', async () => {
  const online = { up: true };
  const worker = loadWorker(online);
  await worker.dispatch('install', {});
  expect([...worker.caches.keys()]).toContain('/');
  const get = (path: string, mode = 'no-cors') => ({
    request: { method: 'GET', url: `https://chime.example${path}`, mode },
  });
  // Online, a page load is fresh, and kept as the shell.
  const page = await worker.dispatch('fetch', get('/tasks/tsk_1', 'navigate'));
  expect(await (await page)!.text()).toBe('fresh /tasks/tsk_1');
  await new Promise((r) => setTimeout(r, 0));
  expect(await worker.caches.get('/')!.clone().text()).toBe('fresh /tasks/tsk_1');
  // An asset is fetched once, then from the cache.
  await (await worker.dispatch('fetch', get('/assets/index-abc.js')))!.text();
  await new Promise((r) => setTimeout(r, 0));
  online.up = false;
  expect(await (await worker.dispatch('fetch', get('/assets/index-abc.js')))!.text()).toBe('fresh /assets/index-abc.js');
  // Offline, any page of the app starts from the shell.
  expect(await (await worker.dispatch('fetch', get('/inbox', 'navigate')))!.text()).toBe('fresh /tasks/tsk_1');
  // Personal or live calls are not the worker's: the browser goes to the network.
  for (const path of ['/bff/home', '/api/v1/tasks', '/act/tok.en']) {
    expect(await worker.dispatch('fetch', get(path, path.startsWith('/act/') ? 'navigate' : 'cors'))).toBeUndefined();
  }
  expect(await worker.dispatch('fetch', { request: { method: 'POST', url: 'https://chime.example/bff/tasks', mode: 'cors' } })).toBeUndefined();
});

it('closes the notification the server withdraws, and only that one', async () => {
  const worker = loadWorker();
  await worker.dispatch('push', { data: { json: () => payload } });
  const other = { ...payload, title: 'Reminder: Call mum', tag: 'tsk_2@2026-12-05T08:00:00Z/push/sub_1' };
  await worker.dispatch('push', { data: { json: () => other } });
  expect(worker.shown).toHaveLength(2);
  await worker.dispatch('push', { data: { json: () => ({ close: payload.tag }) } });
  expect(worker.shown.map((n) => n.title)).toEqual(['Reminder: Call mum']);
  // A withdrawal for what is no longer shown changes nothing, and shows nothing.
  await worker.dispatch('push', { data: { json: () => ({ close: payload.tag }) } });
  expect(worker.shown).toHaveLength(1);
});

it('keeps /theme.js for offline starts, and serves a fresh one when online', async () => {
  const online = { up: true };
  const worker = loadWorker(online);
  await worker.dispatch('install', {});
  expect(await worker.caches.get('/theme.js')!.clone().text()).toBe('precached /theme.js');
  const get = { request: { method: 'GET', url: 'https://chime.example/theme.js', mode: 'no-cors' } };
  // Not named by content like /assets/: online, always the network's (a new version at once).
  expect(await (await worker.dispatch('fetch', get))!.text()).toBe('fresh /theme.js');
  await new Promise((r) => setTimeout(r, 0));
  online.up = false;
  expect(await (await worker.dispatch('fetch', get))!.text()).toBe('fresh /theme.js');
});
