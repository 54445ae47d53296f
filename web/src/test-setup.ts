import { afterEach } from 'vitest';
import { cleanup, configure } from '@testing-library/react';

// `waitFor` and `findBy*` wait for an event, not a duration: their deadline only turns a hang
// into a failure. Testing Library's default of 1 s fails them on a loaded 2-core CI machine
// (the Rust suite runs beside this one), so the deadline is generous.
configure({ asyncUtilTimeout: 10_000 });

afterEach(() => {
  cleanup();
  localStorage.clear();
});
