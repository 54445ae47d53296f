import { render, screen } from '@testing-library/react';
import { expect, it } from 'vitest';
import { Field } from './Field';

it('labels its control and describes it by hint and error', () => {
  render(
    <Field id="n" label="Name" hint="What to call it" error="must not be empty">
      {(p) => <input {...p} />}
    </Field>,
  );
  const input = screen.getByLabelText('Name');
  expect(input.getAttribute('aria-invalid')).toBe('true');
  expect(input.getAttribute('aria-describedby')).toBe('n-hint n-error');
  expect(screen.getByText('must not be empty').id).toBe('n-error');
});

it('is valid and undescribed without hint or error', () => {
  render(<Field id="n" label="Name">{(p) => <input {...p} />}</Field>);
  const input = screen.getByLabelText('Name');
  expect(input.getAttribute('aria-invalid')).toBe('false');
  expect(input.hasAttribute('aria-describedby')).toBe(false);
});
