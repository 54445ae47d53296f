// Chime's service worker: shows web push notifications (the server sends the task's name and
// due time as JSON) and focuses the app when one is clicked. Nothing is cached: the app is
// small and always fresh from the server.
self.addEventListener('push', (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: event.data ? event.data.text() : 'Reminder' };
  }
  const title = data.title || data.taskName || data.name || 'Chime reminder';
  const body = data.body || (data.dueAt ? `Due ${new Date(data.dueAt).toLocaleString()}` : '');
  event.waitUntil(self.registration.showNotification(title, { body, tag: data.id, icon: '/favicon.svg' }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then((windows) => {
      const open = windows.find((w) => 'focus' in w);
      return open ? open.focus() : self.clients.openWindow('/inbox');
    }),
  );
});
