// The translator for the screens: the user's language (prefs.ts) in this browser's locale,
// again when they choose another in Settings.

import { usePrefs } from '../prefs';
import { browserLanguages, resolveLocale, translator, type Translator } from '.';

export function useI18n(): Translator {
  const { language } = usePrefs();
  return translator(resolveLocale(language, browserLanguages()));
}
