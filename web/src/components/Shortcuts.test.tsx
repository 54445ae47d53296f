// The shortcuts at work in a page: keydown events on the document navigate, focus the search,
// press an item's button and open the help dialog; not while typing, and not when turned off.
import { act, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { setPrefs } from '../prefs';
import { RouterProvider, useRouter } from '../router';
import { Shortcuts } from './Shortcuts';

// jsdom has <dialog> without its methods: open and close it as a browser does.
beforeAll(() => {
  HTMLDialogElement.prototype.showModal = function (this: HTMLDialogElement) {
    this.setAttribute('open', '');
  };
  HTMLDialogElement.prototype.close = function (this: HTMLDialogElement) {
    if (!this.hasAttribute('open')) return;
    this.removeAttribute('open');
    this.dispatchEvent(new Event('close'));
  };
  Object.defineProperty(HTMLDialogElement.prototype, 'open', {
    configurable: true,
    get(this: HTMLDialogElement) {
      return this.hasAttribute('open');
    },
  });
});

beforeEach(() => {
  window.history.replaceState(null, '', '/inbox');
  vi.spyOn(window, 'scrollTo').mockImplementation(() => undefined);
});
afterEach(() => {
  window.history.replaceState(null, '', '/');
  vi.restoreAllMocks();
});

function Where() {
  return <p data-testid="path">{useRouter().path}</p>;
}

function renderPage(done = vi.fn(), snooze = vi.fn()) {
  const arrivals: Array<(main: HTMLElement) => HTMLElement | null> = [];
  render(
    <RouterProvider>
      <main id="main">
        <h1>Inbox</h1>
        <label htmlFor="note">Note</label>
        <input id="note" />
        <ul>
          <li data-shortcut-item="">
            <a href="/tasks/tsk_1">Tea is ready</a>
            <button type="button" aria-keyshortcuts="d" onClick={done}>
              Done
            </button>
            <button type="button" aria-keyshortcuts="s" onClick={snooze}>
              10 min
            </button>
          </li>
        </ul>
        <Where />
      </main>
      <Shortcuts focusOnArrival={(find) => arrivals.push(find)} />
    </RouterProvider>,
  );
  return { arrivals, done, snooze };
}

const path = () => screen.getByTestId('path').textContent;

it('g then u goes to Upcoming, and n to a new task', () => {
  renderPage();
  fireEvent.keyDown(document.body, { key: 'g' });
  expect(path()).toBe('/inbox');
  fireEvent.keyDown(document.body, { key: 'u' });
  expect(path()).toBe('/upcoming');
  fireEvent.keyDown(document.body, { key: 'n' });
  expect(path()).toBe('/tasks/new');
});

it('keys typed into a field stay there', () => {
  renderPage();
  const note = screen.getByLabelText('Note');
  note.focus();
  expect(fireEvent.keyDown(note, { key: 'g' })).toBe(true);
  expect(fireEvent.keyDown(note, { key: 'u' })).toBe(true);
  expect(fireEvent.keyDown(note, { key: 'n' })).toBe(true);
  expect(fireEvent.keyDown(note, { key: '/' })).toBe(true);
  expect(path()).toBe('/inbox');
  // With a modifier, the browser's shortcut, not ours.
  expect(fireEvent.keyDown(document.body, { key: 'n', ctrlKey: true })).toBe(true);
  expect(path()).toBe('/inbox');
});

it('/ goes to the tasks and asks for their search to be focused, without typing the slash', () => {
  const { arrivals } = renderPage();
  // fireEvent returns false when the default (typing the character) was prevented.
  expect(fireEvent.keyDown(document.body, { key: '/' })).toBe(false);
  expect(path()).toBe('/tasks');
  expect(arrivals).toHaveLength(1);
  const main = document.createElement('main');
  main.innerHTML = '<input id="quick-add"><input id="search" type="search">';
  expect(arrivals[0]!(main)?.id).toBe('search');
});

it('d and s press the focused item’s Done and Snooze, and only there', () => {
  const { done, snooze } = renderPage();
  const link = screen.getByRole('link', { name: 'Tea is ready' });
  link.focus();
  fireEvent.keyDown(link, { key: 'd' });
  expect(done).toHaveBeenCalledTimes(1);
  fireEvent.keyDown(link, { key: 's' });
  expect(snooze).toHaveBeenCalledTimes(1);
  fireEvent.keyDown(document.body, { key: 'd' });
  expect(done).toHaveBeenCalledTimes(1);
});

it('? opens the list in a dialog, which closes back to where focus was', () => {
  renderPage();
  const link = screen.getByRole('link', { name: 'Tea is ready' });
  link.focus();
  fireEvent.keyDown(link, { key: '?' });
  const dialog = screen.getByRole('dialog', { name: 'Keyboard shortcuts' });
  expect(dialog.hasAttribute('open')).toBe(true);
  expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Close' }));
  expect(dialog.textContent).toContain('Go to Upcoming');
  // Tab stays in the dialog.
  expect(fireEvent.keyDown(document.activeElement!, { key: 'Tab' })).toBe(false);
  // Keys inside it are not shortcuts.
  fireEvent.keyDown(document.activeElement!, { key: 'n' });
  expect(path()).toBe('/inbox');
  act(() => screen.getByRole('button', { name: 'Close' }).click());
  expect(dialog.hasAttribute('open')).toBe(false);
  expect(document.activeElement).toBe(link);
});

it('turned off in Settings, no key does anything', () => {
  const { done } = renderPage();
  act(() => setPrefs({ shortcuts: false }));
  fireEvent.keyDown(document.body, { key: 'n' });
  fireEvent.keyDown(document.body, { key: '?' });
  const link = screen.getByRole('link', { name: 'Tea is ready' });
  link.focus();
  fireEvent.keyDown(link, { key: 'd' });
  expect(path()).toBe('/inbox');
  expect(done).not.toHaveBeenCalled();
  expect(screen.queryByRole('dialog')).toBeNull();
});
