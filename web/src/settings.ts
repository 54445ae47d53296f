// The user's preferences, kept in this browser only (per user): default email and phone for
// new tasks, the time zone screens are shown in, and whether feature use is reported. Nothing
// here is sent anywhere except as a task's own fields when the user saves a task.

export interface Settings {
  email: string;
  phone: string;
  timeZone: string;
  telemetry: boolean;
}

export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function key(user: string): string {
  return `chime.settings.${user}`;
}

export function loadSettings(user: string): Settings {
  const defaults: Settings = { email: '', phone: '', timeZone: browserTimeZone(), telemetry: true };
  try {
    const raw = localStorage.getItem(key(user));
    return raw ? { ...defaults, ...(JSON.parse(raw) as Partial<Settings>) } : defaults;
  } catch {
    return defaults;
  }
}

export function saveSettings(user: string, settings: Settings): void {
  localStorage.setItem(key(user), JSON.stringify(settings));
}

export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  const zones = intl.supportedValuesOf?.('timeZone') ?? [];
  return zones.includes('UTC') ? zones : ['UTC', ...zones];
}
