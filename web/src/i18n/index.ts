// The app's words in the user's language: message catalogues (en.ts, de.ts; English is the
// source and the fallback) read through a translator that interpolates `{name}` parameters and
// picks plural forms with Intl.PluralRules. The catalogue's type is English's keys, so a
// catalogue that lacks a key, or has one English does not, fails the type check; a language is
// added by one more file and one line in CATALOGUES.
//
// The language follows the browser (its first language Chime has) unless the user chose one
// in Settings (prefs.ts, kept in this browser); the locale for dates and numbers is the
// browser's when it is of that language (`en-GB` keeps its day-month order), else the
// language itself.

import { createElement, Fragment, type ReactNode } from 'react';
import { de } from './de';
import { en } from './en';

/** The forms of a message that depends on a number (CLDR plural categories). */
export interface PluralMessage {
  zero?: string;
  one?: string;
  two?: string;
  few?: string;
  many?: string;
  other: string;
}

export type MessageKey = keyof typeof en;

/** Every key of the English catalogue, a plural where English has one. */
export type Catalogue = { readonly [K in MessageKey]: (typeof en)[K] extends string ? string : PluralMessage };

export const CATALOGUES = { en, de } satisfies Record<string, Catalogue>;

export type Language = keyof typeof CATALOGUES;

/** The choices Settings offers, each in its own language. */
export const LANGUAGE_NAMES: Record<Language, string> = { en: 'English', de: 'Deutsch' };

export type Params = Record<string, string | number>;

export interface Translator {
  /** The language and the locale for Intl formats (`de-AT`, `en-GB`, `de`). */
  language: Language;
  locale: string;
  /** The message with its `{name}` parameters filled in; `count` picks a plural form. */
  t: (key: MessageKey, params?: Params) => string;
  /** As `t`, with parameters that are elements (a link, a <time>) kept as elements. */
  rich: (key: MessageKey, params: Record<string, ReactNode>) => ReactNode;
}

function isLanguage(code: string): code is Language {
  return Object.hasOwn(CATALOGUES, code);
}

/** The language of a locale (`de-AT` → `de`), if Chime has it. */
export function languageOf(locale: string | undefined): Language | undefined {
  const code = locale?.toLowerCase().split(/[-_]/)[0] ?? '';
  return isLanguage(code) ? code : undefined;
}

/** The user's locale: the chosen language (or the browser's first one Chime has, else
 * English), in the browser's own variant of it where it has one. */
export function resolveLocale(choice: Language | 'system', browser: readonly string[]): string {
  const language = choice !== 'system' ? choice : (browser.map(languageOf).find((l) => l !== undefined) ?? 'en');
  return browser.find((l) => languageOf(l) === language) ?? language;
}

/** The browser's languages, most preferred first. */
export function browserLanguages(): readonly string[] {
  if (typeof navigator === 'undefined') return [];
  return navigator.languages?.length ? navigator.languages : [navigator.language];
}

const PLACEHOLDER = /\{(\w+)\}/g;

function pick(message: string | PluralMessage, locale: string, params: Params | undefined): string {
  if (typeof message === 'string') return message;
  const count = Number(params?.count ?? 0);
  const form = new Intl.PluralRules(locale).select(count);
  return message[form] ?? message.other;
}

const cache = new Map<string, Translator>();

/** The translator for `locale` (its language's catalogue, English where it has none). */
export function translator(locale: string = 'en'): Translator {
  const known = cache.get(locale);
  if (known) return known;
  const language = languageOf(locale) ?? 'en';
  const catalogue: Catalogue = CATALOGUES[language];
  const number = new Intl.NumberFormat(locale);
  const text = (key: MessageKey, params?: Params) => pick(catalogue[key] ?? en[key], locale, params);
  const t = (key: MessageKey, params?: Params) =>
    text(key, params).replace(PLACEHOLDER, (whole, name: string) => {
      const value = params?.[name];
      if (value === undefined) return whole;
      return typeof value === 'number' ? number.format(value) : value;
    });
  const rich = (key: MessageKey, params: Record<string, ReactNode>) => {
    const count = typeof params.count === 'number' ? { count: params.count } : undefined;
    // `split` with a capture group gives text, name, text, name, …, text.
    const parts = text(key, count).split(PLACEHOLDER);
    return createElement(
      Fragment,
      null,
      ...parts.map((part, i) => createElement(Fragment, { key: i }, i % 2 === 1 ? (params[part] ?? `{${part}}`) : part)),
    );
  };
  const made = { language, locale, t, rich };
  cache.set(locale, made);
  return made;
}

/** The names of the days, Monday first, in the locale's words (`Mon`, `Mo`, `Monday`). */
export function weekdayNames(locale: string, style: 'long' | 'short' | 'narrow'): string[] {
  const format = new Intl.DateTimeFormat(locale, { weekday: style, timeZone: 'UTC' });
  // 1 January 2024 was a Monday.
  return Array.from({ length: 7 }, (_, i) => format.format(new Date(Date.UTC(2024, 0, 1 + i))));
}

/** A list in the locale's words: `a, b and c` / `a, b und c`. */
export function list(items: string[], locale: string): string {
  return new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' }).format(items);
}
