// Applies the theme chosen in Settings before the first paint: a classic script in <head>,
// because the server's Content-Security-Policy (default-src 'self') refuses inline scripts.
// "System" needs nothing (the stylesheet follows prefers-color-scheme); a manual choice is set
// on <html> as data-theme. src/prefs.ts owns the key and keeps the page in step afterwards;
// src/prefs.test.ts checks that the two agree.
(() => {
  let theme = null;
  try {
    theme = window.localStorage.getItem('chime.theme');
  } catch {
    // Storage refused (a privacy mode): follow the system.
  }
  if (theme === 'light' || theme === 'dark') {
    document.documentElement.setAttribute('data-theme', theme);
    document.querySelector('meta[name="color-scheme"]')?.setAttribute('content', theme);
  }
})();
