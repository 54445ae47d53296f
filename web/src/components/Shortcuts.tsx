// The keyboard shortcuts at work (what each key means is shortcuts.ts), and the `?` dialog
// that lists them. The dialog is a native modal <dialog>: the page behind it is inert, Escape
// closes it, Tab stays inside it, and focus goes back to where it was.

import { useEffect, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from 'react';
import { usePrefs } from '../prefs';
import { useRouter } from '../router';
import { HELP, searchField, shortcutReader, type Shortcut } from '../shortcuts';
import { useI18n } from '../i18n/react';

/**
 * Listens for the shortcuts while they are on. `focusOnArrival` is how a shortcut that changes
 * screen asks the shell to focus something other than the new screen's heading.
 */
export function Shortcuts({ focusOnArrival }: { focusOnArrival: (find: (main: HTMLElement) => HTMLElement | null) => void }) {
  const { shortcuts } = usePrefs();
  const { path, navigate } = useRouter();
  const [helpOpen, setHelpOpen] = useState(false);

  useEffect(() => {
    if (!shortcuts) return;
    const read = shortcutReader();
    const act = (s: Shortcut) => {
      switch (s.kind) {
        case 'navigate':
          if (s.to !== path.split('?')[0]) navigate(s.to);
          return;
        case 'search': {
          const here = searchField(document.getElementById('main') ?? document);
          if (here) {
            here.focus();
          } else {
            focusOnArrival(searchField);
            navigate('/tasks');
          }
          return;
        }
        case 'help':
          setHelpOpen(true);
          return;
        case 'item': {
          const button = s.item.querySelector<HTMLButtonElement>(`button[aria-keyshortcuts~="${s.key}"]`);
          if (button && !button.disabled) button.click();
          return;
        }
      }
    };
    const onKeyDown = (e: KeyboardEvent) => {
      if (e.defaultPrevented) return;
      const shortcut = read(e);
      if (!shortcut) return;
      // The key is used: `/` must not also be typed into the search it focuses.
      e.preventDefault();
      act(shortcut);
    };
    document.addEventListener('keydown', onKeyDown);
    return () => document.removeEventListener('keydown', onKeyDown);
  }, [shortcuts, path, navigate, focusOnArrival]);

  return <ShortcutsHelp open={helpOpen} onClose={() => setHelpOpen(false)} />;
}

export function ShortcutsHelp({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { t, rich } = useI18n();
  const dialog = useRef<HTMLDialogElement>(null);
  const close = useRef<HTMLButtonElement>(null);
  const returnTo = useRef<Element | null>(null);

  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) {
      returnTo.current = document.activeElement;
      d.showModal();
      close.current?.focus();
    } else if (!open && d.open) {
      d.close();
    }
  }, [open]);

  // Closed by Escape (the browser's `cancel`, then `close`), the button or the link.
  const onDialogClose = () => {
    onClose();
    const back = returnTo.current;
    returnTo.current = null;
    if (back instanceof HTMLElement && back.isConnected) back.focus();
  };

  // A modal dialog already keeps focus off the page; this keeps Tab from leaving for the
  // browser's own controls too.
  const onKeyDown = (e: ReactKeyboardEvent<HTMLDialogElement>) => {
    if (e.key !== 'Tab') return;
    const focusable = [...e.currentTarget.querySelectorAll<HTMLElement>('a[href], button:not([disabled])')];
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (!first || !last) return;
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };

  return (
    <dialog ref={dialog} className="shortcuts-help" aria-labelledby="shortcuts-heading" onClose={onDialogClose} onKeyDown={onKeyDown}>
      <h2 id="shortcuts-heading">{t('shortcuts.keyboardShortcuts')}</h2>
      <dl className="shortcut-list">
        {HELP.map(({ keys, what, place }) => (
          <div key={keys.join(' ')}>
            <dt>
              {keys.map((k, i) => (
                <span key={k}>
                  {i > 0 ? rich('shortcuts.then', { key: <kbd>{k}</kbd> }) : <kbd>{k}</kbd>}
                </span>
              ))}
            </dt>
            <dd>{t(what, place ? { place: t(place) } : undefined)}</dd>
          </div>
        ))}
      </dl>
      <p className="hint">{t('shortcuts.theyDoNothingWhile')}</p>
      <div className="actions">
        <button type="button" ref={close} onClick={() => dialog.current?.close()}>
          {t('shortcuts.close')}
        </button>
      </div>
    </dialog>
  );
}
