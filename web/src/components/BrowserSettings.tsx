// Settings kept in this browser only (prefs.ts): the colour theme and the keyboard shortcuts.
// Each applies as soon as it is chosen; nothing here is saved to the account.

import { setPrefs, usePrefs, type Theme } from '../prefs';

const THEMES: Array<[Theme, string]> = [
  ['system', 'System'],
  ['light', 'Light'],
  ['dark', 'Dark'],
];

export function BrowserSettings() {
  const prefs = usePrefs();
  return (
    <section aria-labelledby="browser-heading" className="settings">
      <h2 id="browser-heading">Display and keyboard</h2>
      <p className="hint">
        Kept in this browser only, and applied at once.
      </p>
      <fieldset aria-describedby="theme-hint">
        <legend>Theme</legend>
        <div className="radios">
          {THEMES.map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="theme" value={value} checked={prefs.theme === value} onChange={() => setPrefs({ theme: value })} />
              {label}
            </label>
          ))}
        </div>
        <p className="hint" id="theme-hint">
          System follows your device’s light or dark setting.
        </p>
      </fieldset>
      <label className="check">
        <input type="checkbox" checked={prefs.shortcuts} onChange={(e) => setPrefs({ shortcuts: e.target.checked })} />
        Keyboard shortcuts (press ? to list them)
      </label>
    </section>
  );
}
