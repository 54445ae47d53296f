// Settings kept in this browser only (prefs.ts): the colour theme, the language and the
// keyboard shortcuts. Each applies as soon as it is chosen; nothing here is saved to the account.

import { LANGUAGE_NAMES, type Language, type MessageKey } from '../i18n';
import { useI18n } from '../i18n/react';
import { setPrefs, usePrefs, type Theme } from '../prefs';

const THEMES: Array<[Theme, MessageKey]> = [
  ['system', 'browserSettings.themeSystem'],
  ['light', 'browserSettings.themeLight'],
  ['dark', 'browserSettings.themeDark'],
];

export function BrowserSettings() {
  const { t } = useI18n();
  const prefs = usePrefs();
  return (
    <section aria-labelledby="browser-heading" className="settings">
      <h2 id="browser-heading">{t('browserSettings.displayAndKeyboard')}</h2>
      <p className="hint">{t('browserSettings.keptInThisBrowser')}</p>
      <fieldset aria-describedby="theme-hint">
        <legend>{t('browserSettings.theme')}</legend>
        <div className="radios">
          {THEMES.map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="theme" value={value} checked={prefs.theme === value} onChange={() => setPrefs({ theme: value })} />
              {t(label)}
            </label>
          ))}
        </div>
        <p className="hint" id="theme-hint">
          {t('browserSettings.systemFollowsYourDevice')}
        </p>
      </fieldset>
      <fieldset>
        <legend>{t('browserSettings.language')}</legend>
        <div className="radios">
          <label>
            <input type="radio" name="language" value="system" checked={prefs.language === 'system'} onChange={() => setPrefs({ language: 'system' })} />
            {t('browserSettings.languageSystem')}
          </label>
          {(Object.entries(LANGUAGE_NAMES) as Array<[Language, string]>).map(([code, name]) => (
            // Each language is named in itself, and marked as such for screen readers.
            <label key={code} lang={code}>
              <input type="radio" name="language" value={code} checked={prefs.language === code} onChange={() => setPrefs({ language: code })} />
              {name}
            </label>
          ))}
        </div>
      </fieldset>
      <label className="check">
        <input type="checkbox" checked={prefs.shortcuts} onChange={(e) => setPrefs({ shortcuts: e.target.checked })} />
        {t('browserSettings.keyboardShortcutsPressTo')}
      </label>
    </section>
  );
}
