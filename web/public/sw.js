// Chime's service worker: shows web push notifications (the server sends the task's name, due
// time and actions as JSON), acts on their Done and Snooze buttons, and focuses the app when
// one is clicked. Nothing is cached: the app is small and always fresh from the server.
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
