// Keyboard shortcuts: which keystroke means what. Single keys, and `g` followed by a key to go
// somewhere; none acts while the user types in a field, holds Ctrl, Alt or Meta (the browser's
// and the system's), or is in a dialog. Shift is part of the character: `?` is Shift+/ on many
// layouts, and `N` is not `n`. The reader is plain state over keystrokes so tests need no DOM
// events; components/Shortcuts.tsx listens and acts. They can be turned off in Settings
// (prefs.ts), as WCAG 2.1.4 asks of single-character shortcuts.

import type { MessageKey } from './i18n';

export type Shortcut =
  | { kind: 'navigate'; to: string }
  | { kind: 'search' }
  | { kind: 'help' }
  /** A key on the focused item (an open reminder): its button that names the key acts. */
  | { kind: 'item'; key: 'd' | 's'; item: Element };

/** `g` then one of these: where it goes. Today is the home route. */
export const GO_TO: Record<string, { to: string; label: MessageKey }> = {
  t: { to: '/', label: 'nav.today' },
  u: { to: '/upcoming', label: 'nav.upcoming' },
  i: { to: '/inbox', label: 'nav.inbox' },
  s: { to: '/settings', label: 'nav.settings' },
};

export const NEW_TASK = '/tasks/new';

/** How long after `g` its second key still counts. */
export const SEQUENCE_MS = 1500;

/** The list the help dialog shows, in its order: what each does, as a catalogue's key (and
 * the key of the place it goes to). */
export const HELP: Array<{ keys: string[]; what: MessageKey; place?: MessageKey }> = [
  { keys: ['n'], what: 'shortcuts.newTask' },
  { keys: ['/'], what: 'shortcuts.search' },
  ...Object.entries(GO_TO).map(([key, { label }]) => ({ keys: ['g', key], what: 'shortcuts.goTo' as const, place: label })),
  { keys: ['d'], what: 'shortcuts.done' },
  { keys: ['s'], what: 'shortcuts.snooze' },
  { keys: ['?'], what: 'shortcuts.help' },
];

/** What the reader needs of a keydown event. */
export interface Keystroke {
  key: string;
  ctrlKey: boolean;
  altKey: boolean;
  metaKey: boolean;
  repeat: boolean;
  isComposing?: boolean;
  target: EventTarget | null;
  timeStamp: number;
}

const MODIFIERS = new Set(['Shift', 'Control', 'Alt', 'AltGraph', 'Meta', 'CapsLock', 'OS']);

const TYPING = 'input, textarea, select, [contenteditable=""], [contenteditable="true"], [contenteditable="plaintext-only"]';

/** The user is typing there (a shortcut's key is a character for the field). */
export function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest(TYPING)) || (target as HTMLElement).isContentEditable === true;
}

/** The item an item key acts on: the one holding focus. */
function itemOf(target: EventTarget | null): Element | null {
  return target instanceof Element ? target.closest('[data-shortcut-item]') : null;
}

/** A reader of keystrokes: each gives the shortcut it completes, if any. */
export function shortcutReader(): (k: Keystroke) => Shortcut | null {
  let gAt: number | null = null;
  return (k) => {
    // Pressing Shift on the way to `?` is not a keystroke of its own.
    if (MODIFIERS.has(k.key)) return null;
    const afterG = gAt !== null && k.timeStamp - gAt <= SEQUENCE_MS;
    gAt = null;
    if (k.ctrlKey || k.altKey || k.metaKey || k.isComposing || k.repeat) return null;
    if (typingIn(k.target) || (k.target instanceof Element && k.target.closest('dialog'))) return null;
    if (afterG) {
      const go = GO_TO[k.key];
      return go ? { kind: 'navigate', to: go.to } : null;
    }
    switch (k.key) {
      case 'g':
        gAt = k.timeStamp;
        return null;
      case 'n':
        return { kind: 'navigate', to: NEW_TASK };
      case '/':
        return { kind: 'search' };
      case '?':
        return { kind: 'help' };
      case 'd':
      case 's': {
        const item = itemOf(k.target);
        return item ? { kind: 'item', key: k.key, item } : null;
      }
      default:
        return null;
    }
  };
}

/** Where `/` puts the cursor on a screen: its search, else its quick add. */
export function searchField(root: ParentNode): HTMLElement | null {
  return root.querySelector<HTMLElement>('input[type="search"]') ?? root.querySelector<HTMLElement>('#quick-add');
}
