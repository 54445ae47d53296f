// What this browser keeps for itself, apart from the user's profile (settings.ts, on the
// server): the colour theme, the language and whether single-key shortcuts are on. They live in
// localStorage, so each browser has its own; keeping them with the account would need profile
// fields of their own.
//
// The theme is a `data-theme` attribute on <html> ("light" or "dark"; none follows the system,
// which the stylesheet reads through prefers-color-scheme). public/theme.js sets it before
// the first paint; `applyTheme` keeps it in step when the choice changes here or in another tab.

import { useSyncExternalStore } from 'react';
import { browserLanguages, CATALOGUES, resolveLocale, type Language } from './i18n';

export type Theme = 'system' | 'light' | 'dark';

export interface Prefs {
  theme: Theme;
  /** Single-key shortcuts (WCAG 2.1.4 asks that they can be turned off). */
  shortcuts: boolean;
  /** The app's language; `system` follows the browser's. */
  language: Language | 'system';
}

export const THEME_KEY = 'chime.theme';
export const SHORTCUTS_KEY = 'chime.shortcuts';
export const LANGUAGE_KEY = 'chime.language';

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // Storage refused (a privacy mode): the defaults.
  }
}

function write(key: string, value: string | null) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Not kept: it still holds for this page.
  }
}

function parse(theme: string | null, shortcuts: string | null, language: string | null): Prefs {
  return {
    theme: theme === 'light' || theme === 'dark' ? theme : 'system',
    shortcuts: shortcuts !== 'off',
    language: language !== null && Object.hasOwn(CATALOGUES, language) ? (language as Language) : 'system',
  };
}

// The snapshot useSyncExternalStore compares: the same object while storage says the same.
let cached: { raw: string; prefs: Prefs } | undefined;

export function readPrefs(): Prefs {
  const theme = read(THEME_KEY);
  const shortcuts = read(SHORTCUTS_KEY);
  const language = read(LANGUAGE_KEY);
  const raw = `${theme}\n${shortcuts}\n${language}`;
  if (cached?.raw !== raw) cached = { raw, prefs: parse(theme, shortcuts, language) };
  return cached.prefs;
}

/** Sets <html> to `theme`, as public/theme.js does on load. */
export function applyTheme(theme: Theme, doc: Document = document) {
  const root = doc.documentElement;
  if (theme === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', theme);
  // Before the stylesheet loads, this tells the browser which canvas colour to paint.
  doc.querySelector('meta[name="color-scheme"]')?.setAttribute('content', theme === 'system' ? 'light dark' : theme);
}

const listeners = new Set<() => void>();

/** Sets <html lang> to the app's language, so screen readers speak it as that language. */
export function applyLanguage(language: Language | 'system', doc: Document = document) {
  doc.documentElement.lang = resolveLocale(language, browserLanguages());
}

function changed() {
  applyTheme(readPrefs().theme);
  applyLanguage(readPrefs().language);
  for (const listener of listeners) listener();
}

export function setPrefs(change: Partial<Prefs>) {
  if (change.theme !== undefined) write(THEME_KEY, change.theme === 'system' ? null : change.theme);
  if (change.shortcuts !== undefined) write(SHORTCUTS_KEY, change.shortcuts ? null : 'off');
  if (change.language !== undefined) write(LANGUAGE_KEY, change.language === 'system' ? null : change.language);
  changed();
}

/** Applies the stored theme now and whenever another tab changes it; call once at start. */
export function followPrefs(): () => void {
  applyTheme(readPrefs().theme);
  applyLanguage(readPrefs().language);
  const onStorage = (e: StorageEvent) => {
    if (e.key === null || e.key === THEME_KEY || e.key === SHORTCUTS_KEY || e.key === LANGUAGE_KEY) changed();
  };
  window.addEventListener('storage', onStorage);
  return () => window.removeEventListener('storage', onStorage);
}

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

export function usePrefs(): Prefs {
  return useSyncExternalStore(subscribe, readPrefs);
}
