// No words in the components and screens but the catalogues' (i18n/): every JSX text, every
// string that a JSX expression shows, every attribute a person reads or hears (`aria-label`,
// `title`, `placeholder`, `alt`, `label`) and every announcement comes through `t`. Read with
// the TypeScript parser, so the check sees the code as the compiler does.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
const DIRS = ['components', 'screens'];

/** Attributes whose values no one reads: names, ids, routes, styles. */
const UNREAD = new Set([
  'className',
  'key',
  'to',
  'href',
  'id',
  'type',
  'name',
  'role',
  'autoComplete',
  'inputMode',
  'htmlFor',
  'rel',
  'target',
  'method',
  'accept',
  'pattern',
  'lang',
  'dateTime',
  'value',
  'defaultValue',
  'min',
  'max',
  'step',
  'd',
  'viewBox',
  'fill',
  'stroke',
  'focusable',
  'spellCheck',
  'autoCapitalize',
  'strokeLinecap',
  'strokeLinejoin',
  'strokeWidth',
  'scope',
  'aria-current',
  'aria-live',
  'aria-labelledby',
  'aria-describedby',
  'aria-controls',
  'aria-keyshortcuts',
  'aria-invalid',
  'aria-hidden',
  'aria-busy',
  'aria-haspopup',
  'aria-expanded',
  'aria-selected',
  'aria-activedescendant',
  'data-key',
  'data-shortcut-item',
  'data-day',
]);
/** Functions whose text argument a person reads or hears: announcements, and the state
 * setters of errors and messages shown. */
const SPOKEN = /^(announce|refusal|set\w*(Error|Problem|Message|Test|Notice|Status))$/;

function files(): string[] {
  const out = [join(ROOT, 'App.tsx')];
  for (const dir of DIRS) {
    for (const name of readdirSync(join(ROOT, dir))) {
      if (name.endsWith('.tsx') && !name.includes('.test.')) out.push(join(ROOT, dir, name));
    }
  }
  return out;
}

const WORDS = /\p{L}{2,}/u;

function literalsIn(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
  const found: string[] = [];
  const where = (n: ts.Node) => `${file.slice(ROOT.length + 1)}:${source.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
  const text = (n: ts.Node): string | undefined => {
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return n.text;
    if (ts.isTemplateExpression(n)) return [n.head.text, ...n.templateSpans.map((s) => s.literal.text)].join(' ');
    return undefined;
  };
  // `inJsx`: under a JSX expression or a read attribute, where a string is shown.
  const visit = (n: ts.Node, inJsx: boolean) => {
    if (ts.isJsxText(n)) {
      if (WORDS.test(n.text)) found.push(`${where(n)} ${n.text.trim()}`);
      return;
    }
    if (ts.isJsxAttribute(n)) {
      const name = n.name.getText();
      if (UNREAD.has(name) || name === 'style' || name.startsWith('on') || name.startsWith('data-')) return;
      if (n.initializer) visit(n.initializer, true);
      return;
    }
    if (ts.isCallExpression(n) && SPOKEN.test(n.expression.getText())) {
      n.arguments.forEach((a) => visit(a, true));
      return;
    }
    // Inside a function within JSX (an event handler, a map's callback), strings are code's
    // again until JSX or a spoken call shows them.
    if (ts.isArrowFunction(n) || ts.isFunctionExpression(n)) {
      ts.forEachChild(n, (c) => visit(c, false));
      return;
    }
    // Keys and comparisons are code, not text.
    if (ts.isBinaryExpression(n) && [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.InKeyword].includes(n.operatorToken.kind)) return;
    if (ts.isElementAccessExpression(n) || ts.isCallExpression(n)) {
      ts.forEachChild(n, (c) => visit(c, false));
      return;
    }
    const value = text(n);
    if (value !== undefined) {
      if (inJsx && WORDS.test(value)) found.push(`${where(n)} ${value}`);
      if (ts.isTemplateExpression(n)) n.templateSpans.forEach((s) => visit(s.expression, inJsx));
      return;
    }
    ts.forEachChild(n, (c) => visit(c, inJsx || ts.isJsxExpression(n)));
  };
  visit(source, false);
  return found;
}

it('components and screens show no words of their own, only the catalogues', () => {
  expect(files().flatMap(literalsIn)).toEqual([]);
});
