import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { followPrefs } from './prefs';
import './styles.css';

// public/theme.js set the theme before the first paint; from here on, prefs.ts keeps it.
followPrefs();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}

// The service worker makes the app installable and starts it offline (a cached shell), and
// shows web push; registering it asks nothing of the user.
if ('serviceWorker' in navigator) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch(() => undefined);
  });
}
