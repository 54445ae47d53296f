// The app's only way to the server: the BFF under /bff, with the session cookie (sent by the
// browser, never readable here) and the session's CSRF token on every state-changing call.
// Errors arrive as RFC 9457 problem+json; a refused field is named by its JSON pointer.

import { translator } from './i18n';

export interface FieldError {
  pointer: string;
  detail: string;
  value?: unknown;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
}

export class ProblemError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.problem = problem;
  }
  get status(): number {
    return this.problem.status;
  }
  /** Field messages by JSON pointer (`/repeats/on`). */
  byPointer(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.problem.errors ?? []) {
      if (e.pointer && !(e.pointer in out)) out[e.pointer] = e.detail;
    }
    return out;
  }
}

export interface SessionInfo {
  signedIn: boolean;
  user?: string;
  csrfToken: string;
  signIn: 'local' | 'oidc';
  telemetry: boolean;
}

let csrfToken = '';

/** Tells the app the session ended (expired, or signed out in another tab). */
export const SIGNED_OUT_EVENT = 'chime:signed-out';

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

async function readProblem(response: Response): Promise<Problem> {
  try {
    const body = (await response.json()) as Problem;
    return { ...body, status: response.status };
  } catch {
    return { status: response.status, title: response.statusText };
  }
}

export async function bff<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`/bff${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    const { t } = translator(document.documentElement.lang || undefined);
    throw new ProblemError({ status: 0, title: t('api.offlineTitle'), detail: t('api.offline') });
  }
  if (!response.ok) {
    const problem = await readProblem(response);
    if (response.status === 401) window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
    throw new ProblemError(problem);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function loadSession(): Promise<SessionInfo> {
  const session = await bff<SessionInfo>('/session');
  setCsrfToken(session.csrfToken);
  return session;
}

export async function signInLocal(user: string): Promise<void> {
  const result = await bff<{ csrfToken: string }>('/auth/local', { method: 'POST', body: { user } });
  setCsrfToken(result.csrfToken);
}

export async function signOut(): Promise<void> {
  await bff<void>('/auth/logout', { method: 'POST' });
  setCsrfToken('');
}

// Shapes of the task API, as the BFF passes them on.

export interface Repeats {
  frequency: number;
  period: 'day' | 'week' | 'month' | 'year';
  on: Array<string | number> | null;
  ends: number | string | null;
}

/** A task that repeats by an RFC 5545 rule, in the server's canonical form. */
export interface RuleRepeats {
  rrule: string;
}

export interface Task {
  id: string;
  name: string;
  description: string | null;
  startDate: string;
  timeZone: string;
  repeats: Repeats | RuleRepeats | null;
  notify: {
    email: string | null;
    sms: string | null;
    push: boolean;
    inApp: boolean;
    webhook: boolean;
    /** Ids of the owner's destinations it also goes to (absent: none). */
    destinations?: string[];
  };
  /** Absent when false. */
  urgent?: boolean;
  /** Sent again until marked done (absent: once). */
  nag?: { everyMinutes: number; times: number };
  /** Channels held back until it is still not done that many minutes after it fired (absent: none). */
  escalate?: Array<{ afterMinutes: number; channel: 'sms' | 'email' | 'push' | 'webhook' }>;
  missed: { policy: 'fireOnceLate' | 'fireAll' | 'skip'; limitSeconds?: number };
  nextExecutionDate: string | null;
  /** Occurrences that do not fire, by the instant the rule gives them (absent: none). */
  skipped?: string[];
  /** Occurrences that fire at another instant (absent: none). */
  moved?: Array<{ from: string; to: string }>;
  /** Occurrences in addition to the rule's (absent: none). */
  added?: string[];
  /** The zone follows the user's settings (absent: false). */
  floating?: boolean;
  /** `repeats` as an RFC 5545 rule (read-only); null for a one-time task. */
  rrule?: string | null;
  createdAt: string;
  modifiedAt: string;
}

export interface Delivery {
  channel: 'email' | 'sms' | 'push' | 'inApp' | 'webhook' | DestinationChannel;
  /** The address, subscription or destination (`dst_…`) it went to. */
  target?: string;
  outcome: 'pending' | 'sent' | 'deadLettered' | 'skipped';
  attempts: number;
  at: string;
  detail?: string;
}

export interface HistoryItem {
  dueAt: string;
  firedAt: string;
  late: boolean;
  skipped: boolean;
  coalesced: number;
  deliveries: Delivery[];
  /** Where the occurrence is in its life (absent for ones fired before Chime kept it). */
  state?: Occurrence['state'];
  acknowledgedAt?: string;
  acknowledgedOn?: string;
  snoozedUntil?: string;
  snoozedFrom?: string;
}

export interface Upcoming {
  at: string;
  taskId: string;
  taskName: string;
  timeZone: string;
  repeats: boolean;
  /** Why it is not where the pattern alone puts it, or when its delivery waits (absent: none). */
  notes?: OccurrenceNote[];
}

/** A note on an upcoming occurrence (crates/chime-http/src/notes.rs): its kind and parts, and
 * in English as `text` for a kind this app does not know yet. */
export interface OccurrenceNote {
  kind: 'dstGap' | 'dstRepeated' | 'shortMonth' | 'quietHours' | (string & {});
  text: string;
  /** The local date a DST note is about, `2026-03-29`. */
  date?: string;
  /** The wall time asked for, and the one it fires at instead (`02:30`, `03:30`). */
  wall?: string;
  firesAt?: string;
  /** The month without the day (`2027-02`), and the day. */
  month?: string;
  day?: number;
  /** Held back by quiet hours (`email`, `sms`, `push`), until `sentAt`. */
  channels?: string[];
  sentAt?: string;
}

export interface Notification {
  id: string;
  taskId: string;
  taskName: string;
  dueAt: string;
  createdAt: string;
  read: boolean;
  /** Arrived during the user's quiet hours: shown without a sound or a system notification. */
  silent?: boolean;
}

/** A fired occurrence and where it is in its life (`/api/v1/occurrences/open`). */
export interface Occurrence {
  key: string;
  taskId: string;
  taskName: string | null;
  dueAt: string;
  seq: number;
  state: 'open' | 'acknowledged' | 'snoozed' | 'repeated' | 'expired';
  firedAt: string;
  expiresAt: string;
  acknowledgedAt?: string;
  acknowledgedOn?: string;
  snoozedUntil?: string;
  snoozedFrom?: string;
}

/** The API path of an occurrence (its task and due instant). */
export function occurrencePath(taskId: string, dueAt: string): string {
  return `/api/tasks/${encodeURIComponent(taskId)}/occurrences/${encodeURIComponent(dueAt)}`;
}

export interface PreviewItem {
  at: string;
  local?: string;
  /** The notes in English, joined; `notes` has each as data. */
  note?: string;
  notes?: OccurrenceNote[];
}

// Destinations: the user's named Apprise-style URLs (an ntfy topic, a Gotify app, a Telegram
// chat, a Slack or Discord webhook, a Matrix room) that a task may also notify. The API
// answers each URL masked: its secrets are `…`, and only the server holds them.

export type DestinationChannel = 'ntfy' | 'gotify' | 'telegram' | 'slack' | 'discord' | 'matrix';

/** Each service by the name it goes by, in the order the app lists them. */
export const DESTINATION_SERVICES: Record<DestinationChannel, string> = {
  ntfy: 'ntfy',
  gotify: 'Gotify',
  telegram: 'Telegram',
  slack: 'Slack',
  discord: 'Discord',
  matrix: 'Matrix',
};

export interface Destination {
  id: string;
  name: string;
  channel: DestinationChannel;
  /** Masked: secrets replaced by `…`. */
  url: string;
  createdAt: string;
}

/** What sending a test notification gave: `detail` says why it failed. */
export interface DestinationTest {
  sent: boolean;
  detail: string | null;
}

/** The service's name for a channel (the channel itself for one this app does not know yet). */
export function serviceName(channel: string): string {
  return DESTINATION_SERVICES[channel as DestinationChannel] ?? channel;
}

/** The user's destinations, oldest first. */
export async function listDestinations(): Promise<Destination[]> {
  return (await bff<{ destinations: Destination[] }>('/api/destinations')).destinations;
}

/** Adds one; rejects with the API's problem (`/name`, `/url`) when refused. */
export function createDestination(input: { name: string; url: string }): Promise<Destination> {
  return bff<Destination>('/api/destinations', { method: 'POST', body: input });
}

/** Renames one, and replaces its URL when `url` is given (absent: the stored one stays). */
export function updateDestination(id: string, input: { name: string; url?: string }): Promise<Destination> {
  return bff<Destination>(`/api/destinations/${encodeURIComponent(id)}`, { method: 'PUT', body: input });
}

export function deleteDestination(id: string): Promise<void> {
  return bff<void>(`/api/destinations/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

/** Sends a test notification there now. */
export function testDestination(id: string): Promise<DestinationTest> {
  return bff<DestinationTest>(`/api/destinations/${encodeURIComponent(id)}/test`, { method: 'POST', body: {} });
}
