import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { syncSettings, type Profile } from './settings';

const DEFAULTS: Profile = {
  timeZone: null,
  email: null,
  phone: null,
  quietHours: [],
  channels: { email: false, sms: false, push: false, inApp: true, webhook: false },
  telemetry: true,
};

/** A server holding `profile`: GET answers it, PUT stores the body (or answers `refuse`). */
function server(profile: Profile, refuse?: { status: number; body: unknown }) {
  const puts: unknown[] = [];
  let stored = profile;
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit = {}) => {
      expect(path).toBe('/bff/api/me');
      if (init.method === 'PUT') {
        const body = JSON.parse(String(init.body)) as Profile;
        puts.push(body);
        if (refuse) return new Response(JSON.stringify(refuse.body), { status: refuse.status });
        stored = { ...body, phone: body.phone === '407 555 1212' ? '+14075551212' : body.phone };
      }
      return new Response(JSON.stringify(stored), { status: 200 });
    }),
  );
  return puts;
}

const LEGACY = { email: 'alice@example.com', phone: '407 555 1212', timeZone: 'Europe/Berlin', telemetry: false };

beforeEach(() => localStorage.clear());
afterEach(() => vi.unstubAllGlobals());

it('moves what this browser kept to a profile nobody saved yet, once, then forgets it', async () => {
  localStorage.setItem('chime.settings.alice', JSON.stringify(LEGACY));
  const puts = server(DEFAULTS);
  const settings = await syncSettings('alice');
  expect(puts).toEqual([{ ...DEFAULTS, ...LEGACY }]);
  expect(settings).toMatchObject({ email: 'alice@example.com', phone: '+14075551212', timeZone: 'Europe/Berlin', telemetry: false });
  expect(localStorage.getItem('chime.settings.alice')).toBeNull();
  // A second load reads the server only.
  await syncSettings('alice');
  expect(puts).toHaveLength(1);
});

it('keeps the profile saved from another browser and drops this browser’s old copy', async () => {
  localStorage.setItem('chime.settings.alice', JSON.stringify(LEGACY));
  const puts = server({ ...DEFAULTS, timeZone: 'Asia/Tokyo', email: 'phone@example.com' });
  const settings = await syncSettings('alice');
  expect(puts).toEqual([]);
  expect(settings).toMatchObject({ timeZone: 'Asia/Tokyo', email: 'phone@example.com', phone: '' });
  expect(localStorage.getItem('chime.settings.alice')).toBeNull();
});

it('keeps an old value the server refuses in the browser until the user saves', async () => {
  localStorage.setItem('chime.settings.alice', JSON.stringify({ ...LEGACY, phone: '12' }));
  const puts = server(DEFAULTS, {
    status: 422,
    body: { type: 'about:blank', title: 'Invalid', status: 422, detail: 'x', errors: [{ pointer: '/phone', value: '12', detail: 'too short' }] },
  });
  const settings = await syncSettings('alice');
  expect(puts).toHaveLength(1);
  expect(settings).toMatchObject({ phone: '12', timeZone: 'Europe/Berlin' });
  expect(localStorage.getItem('chime.settings.alice')).not.toBeNull();
});

it('a profile without a time zone follows the browser’s', async () => {
  server(DEFAULTS);
  const settings = await syncSettings('bob');
  expect(settings.timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
  expect(settings.channels.inApp).toBe(true);
});
