// Chime's service worker: shows web push notifications (the server sends the task's name, due
// time and actions as JSON), closes one when the server says it was done elsewhere
// (`{"close": tag}`), acts on their Done and Snooze buttons, focuses the app when one is
// clicked, and keeps the app's shell so an installed app starts offline.
//
// Caching: the page (index.html) and /theme.js (which the page loads before its first paint)
// network-first, kept as the offline fallback; hashed assets and icons cache-first (their names change with their content). Nothing personal is ever
// cached: /bff, /api and /act go straight to the network.
//
// A button acts with the capability token the push carried for it (`POST /act/{token}`): the
// worker has no session cookie or CSRF token, and needs none. src/sw.test.ts runs this file.

/** The notification a push payload asks for: its title and options. */
function notificationOf(data) {
  const title = data.title || data.taskName || data.name || 'Chime reminder';
  const body = data.body || (data.dueAt ? `Due ${new Date(data.dueAt).toLocaleString()}` : '');
  const actions = Array.isArray(data.actions) ? data.actions.filter((a) => a && a.action && a.token) : [];
  const tokens = {};
  for (const a of actions) tokens[a.action] = a.token;
  return {
    title,
    options: {
      body,
      tag: data.tag,
      icon: '/favicon.svg',
      actions: actions.map((a) => ({ action: a.action, title: a.title || a.action })),
      data: { tokens, taskId: data.taskId },
    },
  };
}

self.addEventListener('push', (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: event.data ? event.data.text() : 'Reminder' };
  }
  // Done elsewhere: the server takes its reminder back (same tag, same push `Topic`).
  if (data && typeof data.close === 'string') {
    event.waitUntil(
      self.registration.getNotifications({ tag: data.close }).then((shown) => shown.forEach((n) => n.close())),
    );
    return;
  }
  const { title, options } = notificationOf(data || {});
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  const notification = event.notification;
  const token = event.action && notification.data && notification.data.tokens ? notification.data.tokens[event.action] : undefined;
  notification.close();
  if (token) {
    event.waitUntil(
      fetch(`/act/${token}`, { method: 'POST', headers: { accept: 'application/json' }, credentials: 'omit' }).catch(() => undefined),
    );
    return;
  }
  const path = notification.data && notification.data.taskId ? `/tasks/${notification.data.taskId}` : '/inbox';
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then((windows) => {
      const open = windows.find((w) => 'focus' in w);
      return open ? open.focus() : self.clients.openWindow(path);
    }),
  );
});

const SHELL = 'chime-shell-v1';
const PRECACHE = ['/', '/theme.js', '/favicon.svg', '/manifest.webmanifest', '/icons/icon-192.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) => cache.addAll(PRECACHE))
      .catch(() => undefined)
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== SHELL).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

/** Paths whose answers are personal or live: never from a cache. */
function personal(path) {
  return path.startsWith('/bff/') || path.startsWith('/api/') || path.startsWith('/act/') || path.startsWith('/sms/');
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || personal(url.pathname)) return;
  if (request.mode === 'navigate') {
    event.respondWith(
      fetch(request)
        .then((response) => {
          const html = (response.headers.get('content-type') || '').startsWith('text/html');
          if (response.ok && html) {
            const copy = response.clone();
            caches.open(SHELL).then((cache) => cache.put('/', copy));
          }
          return response;
        })
        .catch(() => caches.match('/').then((shell) => shell || Response.error())),
    );
    return;
  }
  if (url.pathname === '/theme.js') {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            caches.open(SHELL).then((cache) => cache.put('/theme.js', copy));
          }
          return response;
        })
        .catch(() => caches.match('/theme.js').then((kept) => kept || Response.error())),
    );
    return;
  }
  if (url.pathname.startsWith('/assets/') || url.pathname.startsWith('/icons/')) {
    event.respondWith(
      caches.match(request).then(
        (hit) =>
          hit ||
          fetch(request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              caches.open(SHELL).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
  }
});
