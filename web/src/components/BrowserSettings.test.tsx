import { fireEvent, render, screen } from '@testing-library/react';
import { afterEach, expect, it } from 'vitest';
import { BrowserSettings } from './BrowserSettings';

afterEach(() => document.documentElement.removeAttribute('data-theme'));

it('a theme chosen applies to the page at once and is kept in this browser', () => {
  render(<BrowserSettings />);
  const theme = screen.getByRole('group', { name: 'Theme' });
  expect((screen.getByRole('radio', { name: 'System' }) as HTMLInputElement).checked).toBe(true);
  expect(theme.getAttribute('aria-describedby')).toBe('theme-hint');
  fireEvent.click(screen.getByRole('radio', { name: 'Dark' }));
  expect(document.documentElement.getAttribute('data-theme')).toBe('dark');
  expect(localStorage.getItem('chime.theme')).toBe('dark');
  expect((screen.getByRole('radio', { name: 'Dark' }) as HTMLInputElement).checked).toBe(true);
  fireEvent.click(screen.getByRole('radio', { name: 'System' }));
  expect(document.documentElement.hasAttribute('data-theme')).toBe(false);
});

it('keyboard shortcuts can be turned off', () => {
  render(<BrowserSettings />);
  const box = screen.getByRole('checkbox', { name: /Keyboard shortcuts/ }) as HTMLInputElement;
  expect(box.checked).toBe(true);
  fireEvent.click(box);
  expect(box.checked).toBe(false);
  expect(localStorage.getItem('chime.shortcuts')).toBe('off');
});
