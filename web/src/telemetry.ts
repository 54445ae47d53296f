// Feature-usage telemetry: a feature name and a variant from a fixed list (the BFF refuses
// anything else), counted in Prometheus. Never a task's content, an address or a user id.
// Opted out in Settings: nothing is sent.

import { bff } from './api';

let enabled = true;

export function setTelemetry(on: boolean): void {
  enabled = on;
}

export function track(feature: string, variant = 'any'): void {
  if (!enabled) return;
  // Fire and forget: telemetry never gets in the user's way.
  bff<void>('/telemetry', { method: 'POST', body: { feature, variant } }).catch(() => undefined);
}
