// What each keystroke means: `g` sequences, single keys, and the keystrokes that must not act
// (typing in a field, with Ctrl/Alt/Meta, in a dialog, a `g` gone stale).
import { afterEach, expect, it } from 'vitest';
import { SEQUENCE_MS, searchField, shortcutReader, type Keystroke } from './shortcuts';

afterEach(() => {
  document.body.innerHTML = '';
});

function key(k: string, at: number, more: Partial<Keystroke> = {}): Keystroke {
  return { key: k, ctrlKey: false, altKey: false, metaKey: false, repeat: false, target: document.body, timeStamp: at, ...more };
}

it('g then u goes to Upcoming, and g then t, i, s to Today, Inbox and Settings', () => {
  const read = shortcutReader();
  expect(read(key('g', 1000))).toBeNull();
  expect(read(key('u', 1200))).toEqual({ kind: 'navigate', to: '/upcoming' });
  for (const [second, to] of [['t', '/'], ['i', '/inbox'], ['s', '/settings']]) {
    expect(read(key('g', 2000))).toBeNull();
    expect(read(key(second!, 2100))).toEqual({ kind: 'navigate', to });
  }
});

it('a g sequence is one keystroke after g, and not long after it', () => {
  const read = shortcutReader();
  read(key('g', 0));
  expect(read(key('u', SEQUENCE_MS + 1))).toBeNull();
  // The u did not start anything either; nor does g then an unknown key leave g pending.
  expect(read(key('u', SEQUENCE_MS + 2))).toBeNull();
  read(key('g', 5000));
  expect(read(key('x', 5001))).toBeNull();
  expect(read(key('u', 5002))).toBeNull();
  // Shift on the way to a key is not a keystroke of its own.
  read(key('g', 6000));
  expect(read(key('Shift', 6001))).toBeNull();
  expect(read(key('i', 6002))).toEqual({ kind: 'navigate', to: '/inbox' });
});

it('n, / and ? are a new task, the search and this help', () => {
  const read = shortcutReader();
  expect(read(key('n', 0))).toEqual({ kind: 'navigate', to: '/tasks/new' });
  expect(read(key('/', 10))).toEqual({ kind: 'search' });
  // `?` is Shift+/ on many layouts: Shift is part of the character, not a modifier that stops it.
  expect(read(key('?', 20))).toEqual({ kind: 'help' });
  // Shift makes another character: N is not n.
  expect(read(key('N', 30))).toBeNull();
});

it('nothing fires while typing in an input, a textarea, a select or editable text', () => {
  document.body.innerHTML = `
    <input id="a"><textarea id="b"></textarea><select id="c"><option>x</option></select>
    <div contenteditable="true"><span id="d">text</span></div>`;
  const read = shortcutReader();
  for (const id of ['a', 'b', 'c', 'd']) {
    const target = document.getElementById(id);
    for (const k of ['n', '/', '?', 'g', 'u', 'd', 's']) expect(read(key(k, 0, { target }))).toBeNull();
  }
  // A g typed in a field does not start a sequence that the next key outside would finish.
  read(key('g', 100, { target: document.getElementById('a') }));
  expect(read(key('u', 101))).toBeNull();
});

it('nothing fires with Ctrl, Alt or Meta, on a held key, or inside a dialog', () => {
  document.body.innerHTML = '<dialog open><button id="close">Close</button></dialog>';
  const read = shortcutReader();
  expect(read(key('n', 0, { ctrlKey: true }))).toBeNull();
  expect(read(key('n', 0, { altKey: true }))).toBeNull();
  expect(read(key('/', 0, { metaKey: true }))).toBeNull();
  expect(read(key('n', 0, { repeat: true }))).toBeNull();
  expect(read(key('n', 0, { target: document.getElementById('close') }))).toBeNull();
  read(key('g', 10));
  expect(read(key('u', 11, { ctrlKey: true }))).toBeNull();
});

it('d and s act on the focused item only, and g then s still goes to Settings there', () => {
  document.body.innerHTML = `
    <ul><li data-shortcut-item=""><a id="link" href="/tasks/t1">Tea</a><button id="done">Done</button></li></ul>
    <a id="elsewhere" href="/">Home</a>`;
  const read = shortcutReader();
  const item = document.querySelector('[data-shortcut-item]');
  expect(read(key('d', 0, { target: document.getElementById('link') }))).toEqual({ kind: 'item', key: 'd', item });
  expect(read(key('s', 10, { target: document.getElementById('done') }))).toEqual({ kind: 'item', key: 's', item });
  expect(read(key('d', 20, { target: document.getElementById('elsewhere') }))).toBeNull();
  expect(read(key('s', 30))).toBeNull();
  read(key('g', 40, { target: document.getElementById('link') }));
  expect(read(key('s', 41, { target: document.getElementById('link') }))).toEqual({ kind: 'navigate', to: '/settings' });
});

it('/ finds a screen’s search, else its quick add', () => {
  document.body.innerHTML = '<main><input id="quick-add"><input id="search" type="search"></main>';
  expect(searchField(document)?.id).toBe('search');
  document.body.innerHTML = '<main><input id="quick-add"></main>';
  expect(searchField(document)?.id).toBe('quick-add');
  document.body.innerHTML = '<main><h1>Inbox</h1></main>';
  expect(searchField(document)).toBeNull();
});
