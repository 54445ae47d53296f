// The user's settings, kept on the server (`/api/v1/me`) so that every browser and phone of
// theirs has the same: default email, phone and channels for new tasks, the time zone screens
// are shown in, quiet hours, and whether feature use is reported. Earlier versions kept some of
// them in this browser's localStorage; `syncSettings` moves those to the server once.

import { bff } from './api';

export interface QuietWindow {
  days: string[];
  from: string;
  to: string;
}

export interface Channels {
  email: boolean;
  sms: boolean;
  push: boolean;
  inApp: boolean;
  webhook: boolean;
}

export interface Settings {
  email: string;
  phone: string;
  timeZone: string;
  telemetry: boolean;
  quietHours: QuietWindow[];
  channels: Channels;
}

/** The profile as the API reads and writes it. */
export interface Profile {
  timeZone: string | null;
  email: string | null;
  phone: string | null;
  quietHours: QuietWindow[];
  channels: Channels;
  telemetry: boolean;
}

export const DEFAULT_CHANNELS: Channels = { email: false, sms: false, push: false, inApp: true, webhook: false };

export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function defaultSettings(): Settings {
  return { email: '', phone: '', timeZone: browserTimeZone(), telemetry: true, quietHours: [], channels: DEFAULT_CHANNELS };
}

/** What the screens use: a profile with no time zone follows this browser's. */
export function fromProfile(profile: Partial<Profile>): Settings {
  return {
    email: profile.email ?? '',
    phone: profile.phone ?? '',
    timeZone: profile.timeZone ?? browserTimeZone(),
    telemetry: profile.telemetry ?? true,
    quietHours: profile.quietHours ?? [],
    channels: { ...DEFAULT_CHANNELS, ...profile.channels },
  };
}

export function toProfile(settings: Settings): Profile {
  return {
    timeZone: settings.timeZone || null,
    email: settings.email.trim() || null,
    phone: settings.phone.trim() || null,
    quietHours: settings.quietHours,
    channels: settings.channels,
    telemetry: settings.telemetry,
  };
}

/** A profile nobody saved yet: the server answers the defaults. */
function unsaved(profile: Partial<Profile>): boolean {
  return (
    profile.timeZone == null &&
    profile.email == null &&
    profile.phone == null &&
    (profile.quietHours ?? []).length === 0 &&
    profile.telemetry !== false
  );
}

function legacyKey(user: string): string {
  return `chime.settings.${user}`;
}

/** What an earlier version of the app kept in this browser, if anything. */
export function legacySettings(user: string): Partial<Settings> | null {
  try {
    const raw = localStorage.getItem(legacyKey(user));
    return raw ? (JSON.parse(raw) as Partial<Settings>) : null;
  } catch {
    return null;
  }
}

/**
 * The user's settings from the server. Settings this browser still holds from before they
 * moved to the server are saved there once, unless the user already saved a profile (from
 * another browser: that one wins), and then removed from the browser.
 */
export async function syncSettings(user: string): Promise<Settings> {
  const profile = await bff<Partial<Profile>>('/api/me');
  const legacy = legacySettings(user);
  if (!legacy) return fromProfile(profile);
  let settings = fromProfile(profile);
  if (unsaved(profile)) {
    const migrated = { ...settings, ...legacy, quietHours: settings.quietHours, channels: settings.channels };
    try {
      settings = await saveSettings(migrated);
    } catch {
      // Refused (an old value the server does not accept): shown, kept in this browser until
      // the user saves their settings, which then replaces it.
      return migrated;
    }
  }
  localStorage.removeItem(legacyKey(user));
  return settings;
}

/** Saves `settings` as the user's profile; rejects with the API's problem when refused. */
export async function saveSettings(settings: Settings): Promise<Settings> {
  return fromProfile(await bff<Profile>('/api/me', { method: 'PUT', body: toProfile(settings) }));
}

export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  const zones = intl.supportedValuesOf?.('timeZone') ?? [];
  return zones.includes('UTC') ? zones : ['UTC', ...zones];
}
