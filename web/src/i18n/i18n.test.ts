import { expect, it } from 'vitest';
import { describe as sentence, type TaskForm } from '../recurrence';
import { de } from './de';
import { en } from './en';
import { CATALOGUES, languageOf, resolveLocale, translator, weekdayNames } from '.';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const forms = (message: string | Record<string, string>) => (typeof message === 'string' ? [message] : Object.values(message));

it('German has every key of English, and no other', () => {
  // The type check says so too (`Catalogue`); this holds for a catalogue loaded as data.
  expect(Object.keys(de).sort()).toEqual(Object.keys(en).sort());
});

it('every catalogue fills in the parameters English names, in every plural form', () => {
  for (const [language, catalogue] of Object.entries(CATALOGUES)) {
    for (const [key, message] of Object.entries(en)) {
      const wanted = new Set(forms(message).flatMap(placeholders));
      // A plural form may leave out the count ("Jeden Tag"), never name one English lacks.
      for (const form of forms((catalogue as Record<string, string | Record<string, string>>)[key]!)) {
        for (const name of placeholders(form)) expect(wanted.has(name), `${language} ${key} names {${name}}`).toBe(true);
      }
      if (typeof message !== 'string') expect(typeof catalogue[key as keyof typeof en], `${language} ${key}`).not.toBe('string');
    }
  }
});

it('picks the plural form of the language by Intl.PluralRules and fills in parameters', () => {
  const english = translator('en-GB').t;
  expect(english('tasks.count', { count: 1 })).toBe('1 task');
  expect(english('tasks.count', { count: 2 })).toBe('2 tasks');
  expect(english('tasks.count', { count: 0 })).toBe('0 tasks');
  expect(english('tasks.countMatching', { count: 3, query: 'rent' })).toBe('3 tasks matching “rent”');
  const german = translator('de-DE').t;
  expect(german('tasks.count', { count: 1 })).toBe('1 Aufgabe');
  expect(german('tasks.count', { count: 1500 })).toBe('1.500 Aufgaben');
  expect(german('relative.inMinutes', { count: 20 })).toBe('in 20 Min.');
});

it('a language Chime has not falls back to English', () => {
  expect(translator('fr-FR').t('nav.today')).toBe('Today');
  expect(languageOf('fr-FR')).toBeUndefined();
  expect(languageOf('de-AT')).toBe('de');
});

it('the locale follows the browser’s first language Chime has, in the browser’s variant of it', () => {
  expect(resolveLocale('system', ['fr-FR', 'de-AT', 'en-US'])).toBe('de-AT');
  expect(resolveLocale('system', ['fr-FR'])).toBe('en');
  expect(resolveLocale('system', [])).toBe('en');
  // A choice in Settings wins; the browser's variant of it keeps its formats (en-GB: 24-hour).
  expect(resolveLocale('en', ['de-DE', 'en-GB'])).toBe('en-GB');
  expect(resolveLocale('de', ['en-US'])).toBe('de');
});

it('names weekdays Monday first in the locale', () => {
  expect(weekdayNames('en', 'long')[0]).toBe('Monday');
  expect(weekdayNames('de', 'long')[6]).toBe('Sonntag');
});

it('says a repeating pattern in German as in English', () => {
  const form = {
    repeat: true,
    custom: false,
    rrule: '',
    frequency: '2',
    period: 'week',
    weekdays: ['monday', 'friday'],
    monthMode: 'day',
    monthDay: '',
    nthOrdinal: '2',
    nthWeekday: 'tuesday',
    endsMode: 'after',
    endsCount: '5',
    endsDate: '',
  } as unknown as TaskForm;
  expect(sentence(form)).toBe('Every 2 weeks on Monday and Friday, 5 times');
  expect(sentence(form, 'de')).toBe('Alle 2 Wochen am Montag und Freitag, 5-mal');
  expect(sentence({ ...form, frequency: '1', period: 'month', monthMode: 'nth', endsMode: 'never' }, 'de')).toBe('Jeden Monat am zweiten Dienstag');
  expect(sentence({ ...form, frequency: '1', endsMode: 'never' }, 'de', true)).toBe('jeden Montag und Freitag');
});
