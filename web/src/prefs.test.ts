// The per-browser preferences: stored choices read back, the theme set on <html> (and the
// color-scheme meta) by prefs.ts exactly as public/theme.js sets it before the first paint.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { act, renderHook } from '@testing-library/react';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { applyTheme, readPrefs, setPrefs, SHORTCUTS_KEY, THEME_KEY, usePrefs, type Theme } from './prefs';

const headScript = readFileSync(join(__dirname, '..', 'public', 'theme.js'), 'utf8');

beforeEach(() => {
  document.head.innerHTML = '<meta name="color-scheme" content="light dark">';
  document.documentElement.removeAttribute('data-theme');
});

afterEach(() => {
  document.head.innerHTML = '';
  document.documentElement.removeAttribute('data-theme');
});

function page() {
  return {
    theme: document.documentElement.getAttribute('data-theme'),
    scheme: document.querySelector('meta[name="color-scheme"]')?.getAttribute('content'),
  };
}

it('follows the system and keeps shortcuts on until the user chooses', () => {
  expect(readPrefs()).toEqual({ theme: 'system', shortcuts: true, language: 'system' });
  localStorage.setItem(THEME_KEY, 'sepia');
  expect(readPrefs().theme).toBe('system');
});

it.each<[string | null, Theme]>([
  [null, 'system'],
  ['light', 'light'],
  ['dark', 'dark'],
  ['nonsense', 'system'],
])('the head script and applyTheme set the page alike for a stored %s', (stored, theme) => {
  if (stored !== null) localStorage.setItem(THEME_KEY, stored);
  new Function(headScript)();
  const early = page();
  document.documentElement.removeAttribute('data-theme');
  document.head.innerHTML = '<meta name="color-scheme" content="light dark">';
  expect(readPrefs().theme).toBe(theme);
  applyTheme(readPrefs().theme);
  expect(page()).toEqual(early);
  expect(early).toEqual(theme === 'system' ? { theme: null, scheme: 'light dark' } : { theme, scheme: theme });
});

it('a choice is stored in this browser, applied at once, and seen by components', () => {
  const { result } = renderHook(() => usePrefs());
  expect(result.current.theme).toBe('system');
  act(() => setPrefs({ theme: 'dark' }));
  expect(result.current.theme).toBe('dark');
  expect(localStorage.getItem(THEME_KEY)).toBe('dark');
  expect(page()).toEqual({ theme: 'dark', scheme: 'dark' });
  act(() => setPrefs({ shortcuts: false }));
  expect(result.current).toEqual({ theme: 'dark', shortcuts: false, language: 'system' });
  expect(localStorage.getItem(SHORTCUTS_KEY)).toBe('off');
  // Back to the system: nothing stored, nothing on <html>.
  act(() => setPrefs({ theme: 'system', shortcuts: true }));
  expect(localStorage.getItem(THEME_KEY)).toBeNull();
  expect(localStorage.getItem(SHORTCUTS_KEY)).toBeNull();
  expect(page()).toEqual({ theme: null, scheme: 'light dark' });
});
