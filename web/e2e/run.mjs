// End-to-end tests of the web app in headless Chromium (Debian's `chromium`, driven by
// playwright-core; no browser download), against running Chime servers:
//
//   CHIME_URL        a `chime serve` on the embedded default (local sign-in)
//   CHIME_OIDC_URL   a `chime serve` whose [auth] issuer is the test OIDC provider
//                    (crates/chime/tests/support/oidc), with the `chime-web` client
//   CHIME_E2E_NTFY_PORT  a port on 127.0.0.1 where an ntfy-like receiver answers a publish as
//                    ntfy does, and which the CHIME_URL server may reach for ntfy destinations;
//                    unset, the destinations test is skipped
//   CHROMIUM         the browser (default /usr/bin/chromium)
//   SCREENSHOTS      where screenshots go (default e2e/out); UPDATE_SCREENSHOTS=1 writes the
//                    README's copies under docs/screenshots/web instead
//
// `cargo test` starts both servers and runs this (crates/chime/tests/it/web.rs). Every wait is
// on an event or an element (Playwright's auto-waiting), never a fixed sleep. Each screen is
// checked with axe-core: any serious or critical violation fails the run.

import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const BASE = process.env.CHIME_URL;
const OIDC_BASE = process.env.CHIME_OIDC_URL;
const NTFY_PORT = process.env.CHIME_E2E_NTFY_PORT;
if (!BASE) {
  console.error('CHIME_URL is not set: start `chime serve` and point CHIME_URL at it');
  process.exit(2);
}
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? join(here, '..', '..', 'docs', 'screenshots', 'web')
  : (process.env.SCREENSHOTS ?? join(here, 'out'));
mkdirSync(SHOTS, { recursive: true });

const TIMEOUT = Number(process.env.E2E_TIMEOUT ?? 30_000);
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

let failures = 0;
const started = Date.now();
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${name}\n${error?.stack ?? error}`);
    // What the page looked like, for the log reader.
    for (const [i, page] of browser.contexts().flatMap((c) => c.pages()).entries()) {
      console.log(`  page ${i} was at ${page.url()}`);
      await page.screenshot({ path: join(SHOTS, `failure-${failures}-${i}.png`) }).catch(() => undefined);
    }
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function newPage(base, viewport = DESKTOP, locale = 'en-GB') {
  // A fresh context: its own cookies, like a separate browser profile.
  const context = await browser.newContext({
    baseURL: base,
    viewport,
    locale,
    timezoneId: 'Europe/Berlin',
    isMobile: viewport === PHONE,
    hasTouch: viewport === PHONE,
  });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
  return page;
}

/** axe-core on the page as it is: serious and critical violations fail. */
async function axe(page, screen) {
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  const serious = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(serious.length === 0, `axe on ${screen}: ${JSON.stringify(serious, null, 2)}`);
  return results.length;
}

async function shot(page, name) {
  // On a phone, the bottom navigation is fixed to the viewport: a full-page shot taken past the
  // first screen would show it mid-page. The viewport grows to the page for the shot instead.
  const viewport = page.viewportSize();
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  const grow = viewport.width < 640 && height > viewport.height;
  if (grow) await page.setViewportSize({ width: viewport.width, height });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  if (grow) await page.setViewportSize(viewport);
}

async function signInLocal(page, user) {
  await page.goto('/');
  await page.getByLabel('Your name').fill(user);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Today', level: 1 }).waitFor();
}

/** The wall clock in Berlin `seconds` from now, as a datetime-local value with seconds. */
function berlinIn(seconds) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Europe/Berlin', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(Date.now() + seconds * 1000));
  const get = (t) => parts.find((p) => p.type === t).value;
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}`;
}

function nextMonday() {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() + ((8 - d.getUTCDay()) % 7 || 7));
  return `${d.toISOString().slice(0, 10)}T09:00`;
}

function nextSaturdayAt(time) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() + ((13 - d.getUTCDay()) % 7 || 7));
  return `${d.toISOString().slice(0, 10)}T${time}`;
}

function berlinWeekdayAndTime(instant) {
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(instant));
}

const alice = await newPage(BASE);
let weeklyUrl = '';

await test('the sign-in screen is accessible and a name signs in through a session cookie', async () => {
  await alice.goto('/');
  await alice.getByRole('heading', { name: /Chime/ }).waitFor();
  await axe(alice, 'sign-in');
  await shot(alice, 'signin-desktop');
  await signInLocal(alice, 'alice');
  const cookies = await alice.context().cookies();
  const session = cookies.find((c) => c.name === 'chime_session');
  check(session, 'no session cookie');
  check(session.httpOnly && session.secure && session.sameSite === 'Lax', `cookie flags: ${JSON.stringify(session)}`);
  // The page cannot read it.
  check(!(await alice.evaluate(() => document.cookie)).includes('chime_session'), 'session cookie readable by script');
});

await test('a state-changing call without the CSRF token is refused', async () => {
  const status = await alice.evaluate(async () => {
    const r = await fetch('/bff/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
    return r.status;
  });
  check(status === 403, `expected 403, got ${status}`);
});

await test('a weekly task shows its next 10 occurrences in the live preview, and a short month is noted', async () => {
  await alice.getByRole('link', { name: 'New task' }).click();
  await alice.getByRole('heading', { name: 'New task', level: 1 }).waitFor();
  await alice.getByLabel('Name', { exact: true }).fill('Stand-up');
  await alice.getByLabel('Date and time').fill(nextMonday());
  await alice.getByLabel('Time zone').selectOption('Europe/Berlin');
  await alice.getByLabel('Repeating').check();
  await alice.getByLabel('Every', { exact: true }).fill('1');
  await alice.getByRole('checkbox', { name: 'Monday' }).check();
  await alice.getByRole('checkbox', { name: 'Wednesday' }).check();
  const preview = alice.locator('.preview ol.occurrences > li');
  await alice.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length === 10);
  const instants = await preview.locator('time').evaluateAll((els) => els.map((e) => e.getAttribute('datetime')));
  for (const at of instants) {
    const text = berlinWeekdayAndTime(at);
    check(/^(Monday|Wednesday) 09:00$/.test(text), `occurrence ${at} is ${text}, not Monday or Wednesday 09:00 in Berlin`);
  }
  check(new Set(instants).size === 10, 'occurrences repeat');
  await axe(alice, 'task form');
  await shot(alice, 'task-form-desktop');
  // Monthly on the 31st: the preview says which months are skipped.
  await alice.getByLabel('Period').selectOption('month');
  await alice.getByLabel('Days').fill('31');
  await alice.locator('.preview .note', { hasText: 'has no day 31' }).first().waitFor();
  await alice.getByLabel('Period').selectOption('week');
  await alice.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length === 10 && !document.querySelector('.preview .note'));
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.getByRole('heading', { name: 'Stand-up', level: 1 }).waitFor();
  weeklyUrl = new URL(alice.url()).pathname;
  await alice.getByRole('heading', { name: 'Next occurrences' }).waitFor();
});

await test('the server’s validation errors appear next to the field they name', async () => {
  await alice.goto('/tasks/new');
  await alice.getByLabel('Repeating').check();
  await alice.getByLabel('Every', { exact: true }).fill('0');
  await alice.getByRole('button', { name: 'Create task' }).click();
  const name = alice.getByLabel('Name', { exact: true });
  await alice.locator('#name[aria-invalid="true"]').waitFor();
  await alice.locator('#frequency[aria-invalid="true"]').waitFor();
  const described = await name.getAttribute('aria-describedby');
  check(described === 'name-error', `name is described by ${described}`);
  check((await alice.locator('#name-error').textContent()).length > 0, 'no message for name');
  await axe(alice, 'task form with errors');
  await shot(alice, 'task-form-errors-desktop');
});

await test('one occurrence is skipped from the task page and restored', async () => {
  const page = await newPage(BASE);
  await signInLocal(page, 'skipper');
  await page.goto('/tasks/new');
  await page.getByLabel('Name', { exact: true }).fill('Gym');
  await page.getByLabel('Date and time').fill(nextMonday());
  await page.getByLabel('Time zone').selectOption('Europe/Berlin');
  await page.getByLabel('Repeating').check();
  await page.getByLabel('Period').selectOption('day');
  await page.getByRole('button', { name: 'Create task' }).click();
  await page.getByRole('heading', { name: 'Gym', level: 1 }).waitFor();
  const items = page.locator('section[aria-labelledby="next-heading"] ol.occurrences > li time');
  await page.waitForFunction(() => document.querySelectorAll('section[aria-labelledby="next-heading"] ol.occurrences > li').length === 10);
  const first = await items.first().getAttribute('datetime');
  await page.locator('section[aria-labelledby="next-heading"] ol.occurrences > li').first().getByRole('button', { name: /^Skip/ }).click();
  await page.getByRole('heading', { name: 'Skipped', level: 3 }).waitFor();
  await page.waitForFunction((at) => document.querySelector('section[aria-labelledby="next-heading"] ol.occurrences > li time').getAttribute('datetime') !== at, first);
  check((await page.locator('s time').getAttribute('datetime')) === first, 'the skipped one is not listed as skipped');
  await axe(page, 'task page with a skipped occurrence');
  await shot(page, 'task-skipped-desktop');
  await page.getByRole('button', { name: /^Restore/ }).click();
  await page.waitForFunction((at) => document.querySelector('section[aria-labelledby="next-heading"] ol.occurrences > li time').getAttribute('datetime') === at, first);
  check((await page.getByRole('heading', { name: 'Skipped' }).count()) === 0, 'still listed as skipped');

  // Move the first one three hours later on Berlin's wall clock; past its neighbour is refused.
  const rows = page.locator('section[aria-labelledby="next-heading"] ol.occurrences > li');
  await rows.first().getByRole('button', { name: /^Move/ }).click();
  const to = page.getByLabel('Move to (Europe/Berlin)');
  const local = await to.inputValue();
  check(local.endsWith('T09:00'), `the form starts at the occurrence: ${local}`);
  // The next day at the same time: where the next occurrence is.
  const [day, time] = local.split('T');
  const next = new Date(`${day}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  await to.fill(`${next.toISOString().slice(0, 10)}T${time}`);
  await page.getByRole('button', { name: 'Save move' }).click();
  await page.locator('#move-to[aria-invalid="true"]').waitFor();
  check(/neighbours/.test(await page.locator('#move-to-error').textContent()), 'the refusal does not say why');
  await to.fill(local.replace('T09:00', 'T12:00'));
  await page.getByRole('button', { name: 'Save move' }).click();
  await page.locator('.note', { hasText: 'moved from' }).first().waitFor();
  const movedTo = await rows.first().locator('time').getAttribute('datetime');
  check(new Date(movedTo).getTime() - new Date(first).getTime() === 3 * 3600_000, `moved to ${movedTo}, not three hours after ${first}`);
  await axe(page, 'task page with a moved occurrence');
  await shot(page, 'task-moved-desktop');
  await rows.first().getByRole('button', { name: /^Move back/ }).click();
  await page.waitForFunction((at) => document.querySelector('section[aria-labelledby="next-heading"] ol.occurrences > li time').getAttribute('datetime') === at, first);

  // Add a time: at 18:00 on the first occurrence's day, listed as added, then removed.
  await page.getByRole('button', { name: 'Add a time' }).click();
  const at = page.getByLabel('Also remind me at (Europe/Berlin)');
  await at.fill(local.replace('T09:00', 'T18:00'));
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const added = rows.filter({ hasText: 'added' });
  await added.first().waitFor();
  const addedAt = await added.first().locator('time').getAttribute('datetime');
  check(new Date(addedAt).getTime() - new Date(first).getTime() === 9 * 3600_000, `added at ${addedAt}, not nine hours after ${first}`);
  check((await rows.nth(1).locator('time').getAttribute('datetime')) === addedAt, 'the added time is not listed in order');
  await axe(page, 'task page with an added occurrence');
  await shot(page, 'task-added-desktop');
  await added.first().getByRole('button', { name: /^Remove/ }).click();
  await page.waitForFunction(() => ![...document.querySelectorAll('section[aria-labelledby="next-heading"] ol.occurrences > li')].some((li) => li.textContent.includes('added')));
  await page.close();
});

await test('quick add says what it understood and when, then adds the task', async () => {
  await alice.goto('/tasks');
  await alice.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
  const line = alice.getByLabel('Quick add');
  await line.fill('Meeting at 25:00');
  await alice.locator('.quick-add .error', { hasText: '25:00' }).waitFor();
  check(await alice.getByRole('button', { name: 'Add', exact: true }).isDisabled(), 'a refused line can be added');
  await line.fill('Water the plants every other Friday at 9');
  await alice.locator('.quick-add .hint', { hasText: 'Every other Friday at 09:00' }).waitFor();
  await axe(alice, 'quick add');
  await shot(alice, 'tasks-quick-add-desktop');
  await alice.getByRole('button', { name: 'Add', exact: true }).click();
  await alice.getByRole('heading', { name: 'Water the plants', level: 1 }).waitFor();
  await alice.locator('dd code', { hasText: 'FREQ=WEEKLY;INTERVAL=2;BYDAY=FR' }).waitFor();
});

await test('the second Tuesday of the month and a custom rule are written as RFC 5545 rules', async () => {
  await alice.goto('/tasks/new');
  await alice.getByLabel('Name', { exact: true }).fill('Book club');
  await alice.getByLabel('Date and time').fill(nextMonday());
  await alice.getByLabel('Time zone').selectOption('Europe/Berlin');
  await alice.getByLabel('Repeating').check();
  await alice.getByLabel('Period').selectOption('month');
  await alice.getByLabel('A weekday of the month').check();
  await alice.getByLabel('Which').selectOption('2');
  await alice.getByLabel('Weekday', { exact: true }).selectOption('tuesday');
  await alice.locator('.hint.rule code', { hasText: 'FREQ=MONTHLY;BYDAY=2TU' }).waitFor();
  await alice.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length === 10);
  const days = await alice.$$eval('.preview ol.occurrences > li', (items) => items.map((li) => li.textContent));
  // Shown as `8 Dec 2026, 09:00`: each a Tuesday from the 8th to the 14th.
  const secondTuesday = (d) => {
    const date = new Date(`${d.split(',')[0].replace('Sept', 'Sep')} 12:00`);
    return date.getDay() === 2 && date.getDate() >= 8 && date.getDate() <= 14;
  };
  check(days.every(secondTuesday), `not all second Tuesdays: ${days.join(' | ')}`);
  await axe(alice, 'task form with the nth weekday');
  await shot(alice, 'task-form-rule-desktop');
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.getByRole('heading', { name: 'Book club', level: 1 }).waitFor();
  await alice.getByText('Every month on the second Tuesday').waitFor();
  await alice.locator('dd code', { hasText: 'FREQ=MONTHLY;BYDAY=2TU' }).waitFor();

  await alice.goto('/tasks/new');
  await alice.getByLabel('Name', { exact: true }).fill('Stretch');
  await alice.getByLabel('Time zone').selectOption('Europe/Berlin');
  await alice.getByLabel('Custom rule').check();
  await alice.getByLabel('Rule (RFC 5545 RRULE)').fill('FREQ=HOURLY;BYMINUTE=0,1');
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.locator('#rrule[aria-invalid="true"]').waitFor();
  check(/BYMINUTE/.test(await alice.locator('#rrule-error').textContent()), 'the error does not name the part');
  await alice.getByLabel('Rule (RFC 5545 RRULE)').fill('FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17');
  await alice.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length === 10);
  // A rule's several times of day are its pattern, not moves: no note.
  const notes = await alice.locator('.preview .note').count();
  check(notes === 0, `${notes} notes on a rule's ordinary times of day`);
  await axe(alice, 'task form with a custom rule');
  await shot(alice, 'task-form-custom-rule-desktop');
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.getByRole('heading', { name: 'Stretch', level: 1 }).waitFor();
  await alice.getByText('By the rule FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,13,17').waitFor();
  check((await alice.getByText('As a calendar rule').count()) === 0, 'a custom rule is shown twice');
  await shot(alice, 'task-rule-desktop');
});

await test('a task due in a few seconds arrives in the inbox live, with the unread badge', async () => {
  await alice.goto('/tasks/new');
  await alice.getByLabel('Name', { exact: true }).fill('Tea is ready');
  await alice.getByLabel('Time zone').selectOption('Europe/Berlin');
  await alice.getByLabel('Date and time').fill(berlinIn(6));
  // Nag until done: every 10 minutes, at most 3 times (the defaults shown).
  await alice.getByRole('checkbox', { name: 'Repeat until I mark it done' }).check();
  check((await alice.getByLabel('Every (minutes)').inputValue()) === '10', 'the nag interval is not 10 minutes');
  await axe(alice, 'task form with a nag');
  await shot(alice, 'task-form-nag-desktop');
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.getByRole('heading', { name: 'Tea is ready', level: 1 }).waitFor();
  await alice.getByText('sent again every 10 min, at most 3 times').waitFor();
  // Client-side navigation: the event stream opened at sign-in stays open.
  await alice.getByRole('link', { name: /^Inbox/ }).click();
  await alice.getByRole('heading', { name: 'Inbox', level: 1 }).waitFor();
  await alice.getByRole('list', { name: 'Notifications' }).getByRole('link', { name: 'Tea is ready' }).waitFor();
  await alice.getByRole('link', { name: /Inbox\s*1 unread/ }).waitFor();
  // It is open, with Done and Snooze at hand.
  const open = alice.getByRole('list', { name: 'Open reminders' });
  await open.getByRole('link', { name: 'Tea is ready' }).waitFor();
  await open.getByRole('button', { name: 'Snooze Tea is ready for 10 min' }).waitFor();
  await axe(alice, 'inbox');
  await shot(alice, 'inbox-desktop');
  // Done: it leaves the open list and its notification is read, on the server.
  await open.getByRole('button', { name: 'Done: Tea is ready' }).click();
  await alice.getByText('Nothing waiting for you.').waitFor();
  await alice.getByText('All caught up.').waitFor();
  await alice.reload();
  await alice.getByText('Nothing waiting for you.').waitFor();
  await alice.getByText('All caught up.').waitFor();
  // The task's history says so.
  await alice.getByRole('list', { name: 'Notifications' }).getByRole('link', { name: 'Tea is ready' }).click();
  await alice.getByRole('heading', { name: 'Tea is ready', level: 1 }).waitFor();
  await alice.locator('td', { hasText: /Done .* · In-app/ }).waitFor();
  await axe(alice, 'task page with a done occurrence');
  await shot(alice, 'task-done-desktop');
});

await test('a task may hold a channel back until it is still not done (escalation)', async () => {
  await alice.goto('/tasks/new');
  await alice.getByLabel('Name', { exact: true }).fill('Take the bins out');
  await alice.getByRole('checkbox', { name: 'Email', exact: true }).check();
  await alice.getByLabel('Email address').fill('alice@example.com');
  await alice.getByLabel('Email after (minutes)').fill('15');
  await axe(alice, 'task form with an escalation');
  await shot(alice, 'task-form-escalate-desktop');
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.getByRole('heading', { name: 'Take the bins out', level: 1 }).waitFor();
  await alice.getByText('email after 15 min if not done').waitFor();
  await axe(alice, 'task page with an escalation');
  await shot(alice, 'task-escalate-desktop');
});

await test('a webhook that keeps failing is dead-lettered, shown as failed, and can be retried from the task page', async () => {
  // The server under test dead-letters after a one-second retry window and lets webhooks go to
  // loopback; nothing listens on port 9.
  await alice.getByRole('link', { name: 'Settings' }).click();
  await alice.getByLabel('Endpoint URL').fill('http://127.0.0.1:9/hook');
  await alice.getByRole('button', { name: 'Save webhook' }).click();
  await alice.getByText(/Signing secret/).waitFor();
  await alice.goto('/tasks/new');
  await alice.getByLabel('Name', { exact: true }).fill('Call the plumber');
  await alice.getByLabel('Time zone').selectOption('Europe/Berlin');
  await alice.getByLabel('Date and time').fill(berlinIn(6));
  await alice.getByRole('checkbox', { name: 'Webhook' }).check();
  await alice.getByRole('button', { name: 'Create task' }).click();
  await alice.getByRole('heading', { name: 'Call the plumber', level: 1 }).waitFor();
  // The page follows the delivery (in-app arrival, then its own refresh while retrying).
  const retry = alice.getByRole('button', { name: 'Retry Webhook delivery' });
  await retry.waitFor();
  await axe(alice, 'task page with a dead letter');
  await shot(alice, 'task-dead-letter-desktop');
  await retry.click();
  await alice.getByRole('status').filter({ hasText: 'Delivery retried' }).waitFor();
  // Snoozed from the inbox, it moves from Open to Snoozed, with when it comes back.
  await alice.getByRole('link', { name: /^Inbox/ }).click();
  const open = alice.getByRole('list', { name: 'Open reminders' });
  await open.getByRole('button', { name: 'Snooze Call the plumber for 1 hour' }).click();
  const snoozed = alice.getByRole('list', { name: 'Snoozed reminders' });
  await snoozed.getByRole('link', { name: 'Call the plumber' }).waitFor();
  check((await open.getByRole('link', { name: 'Call the plumber' }).count()) === 0, 'the snoozed reminder is still open');
  await axe(alice, 'inbox with a snoozed reminder');
  await shot(alice, 'inbox-snoozed-desktop');
});

await test('editing renames the task, and search finds it', async () => {
  await alice.goto(weeklyUrl);
  await alice.getByRole('link', { name: 'Edit' }).click();
  await alice.getByRole('heading', { name: 'Edit task', level: 1 }).waitFor();
  const name = alice.getByLabel('Name', { exact: true });
  check((await name.inputValue()) === 'Stand-up', 'the form is not filled with the task');
  check(await alice.getByRole('checkbox', { name: 'Wednesday' }).isChecked(), 'weekdays not read back');
  await name.fill('Team stand-up');
  await alice.getByRole('button', { name: 'Save changes' }).click();
  await alice.getByRole('heading', { name: 'Team stand-up', level: 1 }).waitFor();
  await axe(alice, 'task page');
  await shot(alice, 'task-desktop');
  await alice.getByRole('link', { name: 'Tasks', exact: true }).click();
  await alice.getByLabel('Search tasks').fill('team');
  await alice.getByRole('status').filter({ hasText: '1 task matching “team”' }).waitFor();
  await axe(alice, 'tasks');
  await shot(alice, 'tasks-desktop');
});

/** Creates a task through the BFF as the app would (session + CSRF token); its status. */
async function createThroughBff(page, body) {
  return page.evaluate(async (b) => {
    const { csrfToken } = await (await fetch('/bff/session')).json();
    const r = await fetch('/bff/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
      body: JSON.stringify(b),
    });
    return r.status;
  }, body);
}

await test('today is the home screen: what is open with Done and Snooze, what is left, and a kind empty day', async () => {
  const page = await newPage(BASE);
  await signInLocal(page, 'tina');
  await page.getByText('No reminders yet.').waitFor();
  await axe(page, 'today without reminders');
  // A daily stand-up from next Monday: nothing today, and it is next.
  check((await createThroughBff(page, { name: 'Stand-up', startDate: nextMonday(), timeZone: 'Europe/Berlin', repeats: { frequency: 1, period: 'day' } })) === 201, 'stand-up not created');
  await page.reload();
  const empty = page.locator('.empty', { hasText: 'Nothing left today.' });
  await empty.getByRole('link', { name: 'Stand-up' }).waitFor();
  check(/^Nothing left today\. Next: Stand-up, .+09:00/.test(await empty.textContent()), `the empty day says: ${await empty.textContent()}`);
  await axe(page, 'today, nothing left');

  // Two reminders due in a few seconds, and one in two hours (later today, or next after
  // midnight in Berlin).
  const dentistAt = berlinIn(2 * 3600);
  const dentistToday = dentistAt.slice(0, 10) === berlinIn(0).slice(0, 10);
  for (const [name, startDate] of [['Stretch', berlinIn(5)], ['Drink water', berlinIn(5)], ['Call the dentist', dentistAt]]) {
    check((await createThroughBff(page, { name, startDate, timeZone: 'Europe/Berlin' })) === 201, `${name} not created`);
  }
  await page.reload();
  await page.getByRole('list', { name: dentistToday ? 'Later today' : 'Next' }).getByRole('link', { name: 'Call the dentist' }).waitFor();
  // They arrive live, and are open now, with Done and Snooze at hand.
  const open = page.getByRole('list', { name: 'Open now' });
  await open.getByRole('link', { name: 'Stretch' }).waitFor();
  await open.getByRole('link', { name: 'Drink water' }).waitFor();
  await open.getByRole('button', { name: 'Done: Stretch' }).waitFor();
  await open.getByRole('button', { name: 'Snooze Drink water for 10 min' }).waitFor();
  const stretch = open.getByRole('listitem').filter({ hasText: 'Stretch' });
  check(/Due (now|\d+ min ago)/.test(await stretch.textContent()), `the open item says ${await stretch.textContent()}`);
  // The absolute time is there for the keyboard: shown while the row has focus.
  const absolute = stretch.locator('.absolute-time');
  check((await absolute.evaluate((e) => e.getBoundingClientRect().width)) <= 1, 'the absolute time shows without focus');
  await stretch.getByRole('link', { name: 'Stretch' }).focus();
  check((await absolute.evaluate((e) => e.getBoundingClientRect().width)) > 20, 'focus does not show the absolute time');
  check(/\d{2}:\d{2} (CET|CEST)\)$/.test(await absolute.textContent()), `absolute time: ${await absolute.textContent()}`);
  await page.locator('h1').focus();
  await axe(page, 'today');
  await shot(page, 'today-desktop');

  const phone = await newPage(BASE, PHONE);
  await signInLocal(phone, 'tina');
  await phone.getByRole('list', { name: 'Open now' }).getByRole('link', { name: 'Drink water' }).waitFor();
  await axe(phone, 'today (phone)');
  await shot(phone, 'today-phone');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `today is ${overflow}px wider than the phone`);
  await phone.context().close();

  // Snoozed and done: neither is open any more.
  await open.getByRole('button', { name: 'Snooze Drink water for 10 min' }).click();
  await page.getByRole('status').filter({ hasText: 'Drink water: snoozed until' }).waitFor();
  await open.getByRole('button', { name: 'Done: Stretch' }).click();
  await page.getByRole('status').filter({ hasText: 'Stretch: done' }).waitFor();
  await page.waitForFunction(() => !document.querySelector('#open-now-heading'));
  if (dentistToday) {
    await page.getByRole('list', { name: 'Later today' }).getByRole('link', { name: 'Call the dentist' }).waitFor();
  } else {
    await page.locator('.empty', { hasText: 'Nothing left today. Next: Call the dentist' }).waitFor();
  }
  await page.reload();
  await page.getByRole('heading', { name: 'Today', level: 1 }).waitFor();
  await page.getByRole('list', { name: dentistToday ? 'Later today' : 'Next' }).getByRole('link', { name: 'Call the dentist' }).waitFor();
  check((await page.getByRole('list', { name: 'Open now' }).count()) === 0, 'a settled reminder is still open after a reload');
  await page.context().close();
});

await test('the upcoming screen is an agenda: by day, a repeating task once a day with its rule', async () => {
  await alice.getByRole('link', { name: 'Upcoming', exact: true }).click();
  await alice.getByRole('heading', { name: 'Upcoming', level: 1 }).waitFor();
  await alice.getByRole('link', { name: 'Team stand-up' }).first().waitFor();
  check((await alice.locator('section.day h2').count()) >= 2, 'occurrences are not grouped by day');
  // The rules arrive with the tasks: Stretch (weekdays at 9, 13 and 17) says so in words.
  const stretch = alice.locator('li.agenda-row').filter({ has: alice.getByRole('link', { name: 'Stretch', exact: true }) });
  await stretch.locator('.tag.rule', { hasText: 'daily on weekdays' }).first().waitFor();
  await alice.locator('li.agenda-row .tag.rule', { hasText: 'every Monday and Wednesday' }).first().waitFor();
  // Three times a day, but one row a day, with its other times.
  for (const day of await alice.locator('section.day').all()) {
    const rows = await day.getByRole('link', { name: 'Stretch', exact: true }).count();
    check(rows <= 1, `Stretch has ${rows} rows on ${await day.locator('h2').textContent()}`);
  }
  await stretch.locator('.later-times', { hasText: /also at 1[37]:00/ }).first().waitFor();
  await axe(alice, 'upcoming agenda');
  await shot(alice, 'upcoming-agenda-desktop');
});

/** A fresh browser page in another language, signed in by name (its sign-in screen speaks it). */
async function pageIn(locale, user, viewport = DESKTOP, labels = { name: 'Dein Name', button: 'Anmelden', heading: 'Heute' }) {
  const page = await newPage(BASE, viewport, locale);
  await page.goto('/');
  await page.getByLabel(labels.name).fill(user);
  await page.getByRole('button', { name: labels.button }).click();
  await page.getByRole('heading', { name: labels.heading, level: 1 }).waitFor();
  return page;
}

/** The grid on the screen: its days, and the one in the tab order. */
async function focusedDay(page) {
  return page.evaluate(() => document.activeElement?.getAttribute('data-day'));
}

function nextDay(key, n = 1) {
  const d = new Date(`${key}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

await test('Upcoming as a week and a month: a grid the keyboard moves through, a day opens its reminders, light and dark', async () => {
  await alice.goto('/upcoming');
  await alice.getByRole('heading', { name: 'Upcoming', level: 1 }).waitFor();
  await alice.getByRole('button', { name: 'Week', exact: true }).click();
  check((await alice.getByRole('button', { name: 'Week', exact: true }).getAttribute('aria-pressed')) === 'true', 'the week is not marked as chosen');
  const grid = alice.getByRole('grid');
  await grid.waitFor();
  check((await alice.locator('[data-day]').count()) === 7, 'a week grid has not 7 days');
  // en-GB: the week starts on Monday.
  check((await alice.locator('.calendar thead th').first().getAttribute('abbr')) === 'Monday', 'the en-GB week does not start on Monday');
  check(alice.url().endsWith('/upcoming?view=week'), `the view is not in the address: ${alice.url()}`);
  // Next week has the weekday reminders whatever day this is.
  await alice.getByRole('button', { name: /Next week/ }).click();
  await alice.locator('.calendar-items li', { hasText: 'Stretch' }).first().waitFor();
  await axe(alice, 'upcoming week');
  await shot(alice, 'upcoming-week-desktop');

  await alice.getByRole('button', { name: 'Month', exact: true }).click();
  await alice.locator('.calendar-month').waitFor();
  const title = await alice.locator('#calendar-title').textContent();
  const first = alice.locator('[data-day][tabindex="0"]');
  const today = await first.getAttribute('data-day');
  check((await first.getAttribute('aria-current')) === 'date', 'today is not marked as the current date');
  await first.focus();
  await alice.keyboard.press('ArrowRight');
  check((await focusedDay(alice)) === nextDay(today), 'ArrowRight does not move to the next day');
  await alice.keyboard.press('ArrowDown');
  check((await focusedDay(alice)) === nextDay(today, 8), 'ArrowDown does not move a week');
  await alice.keyboard.press('PageDown');
  check((await alice.locator('#calendar-title').textContent()) !== title, 'Page Down does not show the next month');
  await alice.keyboard.press('PageUp');
  check((await alice.locator('#calendar-title').textContent()) === title, 'Page Up does not come back');
  await alice.keyboard.press('Home');
  check((await alice.evaluate(() => new Date(`${document.activeElement.dataset.day}T12:00:00Z`).getUTCDay())) === 1, 'Home does not go to Monday');
  // A day with the stand-up opens its reminders below the grid, focus going there.
  const standUp = alice.locator('[data-day]').filter({ hasText: 'Team stand-up' }).first();
  await standUp.focus();
  await alice.keyboard.press('Enter');
  const panel = alice.locator('.day-panel');
  await panel.getByRole('link', { name: 'Team stand-up' }).waitFor();
  check((await alice.evaluate(() => document.activeElement?.id)) === 'day-panel-heading', 'Enter does not take the reader to the day');
  check((await standUp.getAttribute('aria-selected')) === 'true', 'the opened day is not selected');
  await axe(alice, 'upcoming month');
  await shot(alice, 'upcoming-month-desktop');
  await panel.getByRole('button', { name: 'Back to the calendar' }).click();
  check((await focusedDay(alice)) === (await standUp.getAttribute('data-day')), 'Back does not return to the day');

  await alice.emulateMedia({ colorScheme: 'dark' });
  check(await paintedDark(alice), 'the month is not dark');
  await axe(alice, 'upcoming month (dark)');
  await shot(alice, 'upcoming-month-dark-desktop');
  await alice.getByRole('button', { name: 'Week', exact: true }).click();
  await alice.locator('.calendar-week').waitFor();
  await alice.getByRole('button', { name: /Next week/ }).click();
  await alice.locator('.calendar-items li', { hasText: 'Stretch' }).first().waitFor();
  await axe(alice, 'upcoming week (dark)');
  await shot(alice, 'upcoming-week-dark-desktop');
  await alice.emulateMedia({ colorScheme: 'light' });
  await alice.getByRole('button', { name: 'Agenda', exact: true }).click();
});

await test('on a phone the week and month grids fit, say each day’s count, and pass axe in both themes', async () => {
  const phone = await newPage(BASE, PHONE);
  await signInLocal(phone, 'alice');
  for (const view of ['week', 'month']) {
    await phone.goto(`/upcoming?view=${view}`);
    await phone.getByRole('grid').waitFor();
    // Next week has the weekday reminders whatever day this is.
    if (view === 'week') await phone.getByRole('button', { name: /Next week/ }).click();
    await phone.locator('.calendar-count').first().waitFor();
    for (const scheme of ['light', 'dark']) {
      await phone.emulateMedia({ colorScheme: scheme });
      await axe(phone, `upcoming ${view} (phone, ${scheme})`);
      const wider = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(wider <= 0, `the ${view} grid is ${wider}px wider than the phone`);
      await shot(phone, scheme === 'light' ? `upcoming-${view}-phone` : `upcoming-${view}-dark-phone`);
    }
    await phone.emulateMedia({ colorScheme: 'light' });
  }
  // A tap on a day opens it; the names are below the grid.
  await phone.locator('[data-day]').filter({ has: phone.locator('.calendar-count') }).first().click();
  await phone.locator('.day-panel li').first().waitFor();
  await phone.context().close();
});

await test('an occurrence moved or held back carries its note in the agenda and the grid', async () => {
  const page = await newPage(BASE);
  await signInLocal(page, 'nora');
  // Quiet hours every night, and a reminder by email at 23:00: the email waits until 07:00.
  const status = await page.evaluate(async (start) => {
    const { csrfToken } = await (await fetch('/bff/session')).json();
    const headers = { 'content-type': 'application/json', 'x-csrf-token': csrfToken };
    const me = await fetch('/bff/api/me', {
      method: 'PUT',
      headers,
      body: JSON.stringify({
        timeZone: 'Europe/Berlin',
        quietHours: [{ days: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'], from: '22:00', to: '07:00' }],
        channels: { inApp: true },
      }),
    });
    const task = await fetch('/bff/tasks', {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'Lock the door', startDate: start, timeZone: 'Europe/Berlin', repeats: { frequency: 1, period: 'day' }, notify: { email: 'nora@example.com', inApp: true } }),
    });
    return [me.status, task.status];
  }, `${nextMonday()}`.replace('T09:00', 'T23:00'));
  check(status[0] === 200 && status[1] === 201, `profile and task: ${status}`);
  await page.goto('/upcoming');
  const row = page.locator('li.agenda-row').filter({ has: page.getByRole('link', { name: 'Lock the door' }) }).first();
  await row.locator('.note', { hasText: 'email sent at' }).waitFor();
  check(/email sent at \w{3} 07:00 \(quiet hours\)/.test(await row.locator('.note').first().textContent()), 'the quiet-hours note does not say when');
  await axe(page, 'upcoming with notes');
  await shot(page, 'upcoming-notes-desktop');
  await page.goto('/upcoming?view=month');
  const noted = page.locator('[data-day]').filter({ has: page.locator('li.noted') }).first();
  await noted.waitFor();
  check((await noted.locator('.visually-hidden').textContent()).endsWith('with a note'), 'a noted day does not say so');
  await noted.click();
  await page.locator('.day-panel .note', { hasText: 'quiet hours' }).first().waitFor();
  await shot(page, 'upcoming-month-notes-desktop');
  await page.context().close();
});

await test('in German: Today, its Done key, the month grid from Monday, relative times, and axe on each', async () => {
  const page = await pageIn('de-DE', 'greta');
  check((await page.evaluate(() => document.documentElement.lang)) === 'de-DE', 'the page is not marked German');
  await taskDueIn(page, 'Blumen gießen', 1);
  await taskDueIn(page, 'Zahnarzt anrufen', 3600 * 3);
  const open = page.getByRole('list', { name: 'Jetzt offen' });
  await open.getByRole('link', { name: 'Blumen gießen' }).waitFor({ timeout: 20_000 });
  await open.getByRole('button', { name: 'Erledigt: Blumen gießen' }).waitFor();
  check(/Fällig (vor \d+ Min\.|jetzt)/.test(await open.locator('li').first().textContent()), 'the due time is not said in German');
  await page.getByRole('list', { name: /Später heute|Als Nächstes/ }).getByRole('link', { name: 'Zahnarzt anrufen' }).waitFor();
  await axe(page, 'today (German)');
  await shot(page, 'today-de-desktop');
  // `d` on the focused open reminder: done, as in the Inbox.
  await open.getByRole('link', { name: 'Blumen gießen' }).focus();
  await page.keyboard.press('d');
  await page.getByRole('status').filter({ hasText: 'Blumen gießen: erledigt' }).waitFor();
  await page.getByRole('list', { name: 'Jetzt offen' }).waitFor({ state: 'detached' });
  await page.goto('/upcoming?view=month');
  await page.getByRole('heading', { name: 'Demnächst', level: 1 }).waitFor();
  await page.getByRole('grid').waitFor();
  check((await page.locator('.calendar thead th').first().getAttribute('abbr')) === 'Montag', 'the German week does not start on Montag');
  check(/^(Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember) \d{4}$/.test(await page.locator('#calendar-title').textContent()), 'the month is not named in German');
  await axe(page, 'upcoming month (German)');
  await shot(page, 'upcoming-month-de-desktop');
  await page.context().close();
});

await test('on a phone a swipe on an open reminder settles it, the buttons staying the accessible way', async () => {
  const phone = await newPage(BASE, PHONE);
  await signInLocal(phone, 'sam');
  await taskDueIn(phone, 'Take out the bins', 1);
  await taskDueIn(phone, 'Water the basil', 1);
  const open = phone.getByRole('list', { name: 'Open now' });
  await open.getByRole('link', { name: 'Take out the bins' }).waitFor({ timeout: 20_000 });
  await open.getByRole('link', { name: 'Water the basil' }).waitFor({ timeout: 20_000 });
  await axe(phone, 'today with open reminders (phone)');
  // A finger's pointer events on the row: down, moving by `dx`, and (unless `hold`) up.
  const swipe = (name, dx, hold = false) =>
    phone.evaluate(
      ([name, dx, hold]) => {
        const row = [...document.querySelectorAll('li.swipe-row')].find((li) => li.textContent.includes(name));
        const at = (type, x) => row.dispatchEvent(new PointerEvent(type, { pointerType: 'touch', pointerId: 7, clientX: x, clientY: 300, bubbles: true }));
        if (!hold || dx === 0) at('pointerdown', 150);
        at('pointermove', 150 + dx / 2);
        at('pointermove', 150 + dx);
        if (!hold) at('pointerup', 150 + dx);
      },
      [name, dx, hold],
    );
  // Right: Done. Left: Snooze 10 min, shown under the row while it is held.
  await swipe('Take out the bins', 110);
  await phone.getByRole('status').filter({ hasText: 'Take out the bins: done' }).waitFor();
  await swipe('Water the basil', 0, true);
  await swipe('Water the basil', -100, true);
  await phone.locator('.swipe-hint.swipe-snooze.ready').waitFor();
  await shot(phone, 'today-swipe-phone');
  await swipe('Water the basil', -110);
  await phone.getByRole('status').filter({ hasText: 'Water the basil: snoozed until' }).waitFor();
  await open.waitFor({ state: 'detached' });
  // The Refresh button, the keyboard's pull to refresh.
  await phone.getByRole('button', { name: 'Refresh' }).click();
  await phone.locator('.empty').waitFor();
  await phone.context().close();
});

await test('settings are accessible, and feature use was counted without personal data', async () => {
  await alice.getByRole('link', { name: 'Settings' }).click();
  await alice.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
  await alice.getByRole('heading', { name: 'Webhook' }).waitFor();
  await axe(alice, 'settings');
  await shot(alice, 'settings-desktop');
  const metrics = await (await fetch(`${BASE}/metrics`)).text();
  check(/chime_web_features_used_total\{feature="task_created",variant="repeating_week"\} 1/.test(metrics), 'task_created{repeating_week} not counted');
  check(/chime_web_features_used_total\{feature="preview_opened",variant="any"\} [1-9]/.test(metrics), 'preview_opened not counted');
  check(!/alice|Stand-up|Tea is ready/.test(metrics), 'personal data in metrics');
});

await test('a calendar feed link is made, serves the tasks as iCalendar, and is turned off', async () => {
  await alice.getByRole('button', { name: 'Make a feed link' }).click();
  const link = alice.getByRole('link', { name: 'Subscribe (webcal)' });
  await link.waitFor();
  check((await link.getAttribute('href')).startsWith('webcal://'), 'not a webcal link');
  const url = await alice.getByLabel('Feed URL').inputValue();
  const feed = await fetch(url);
  check(feed.status === 200, `the feed answered ${feed.status}`);
  check((feed.headers.get('content-type') ?? '').startsWith('text/calendar'), 'not text/calendar');
  const text = await feed.text();
  check(text.startsWith('BEGIN:VCALENDAR') && text.includes('SUMMARY:Team stand-up'), 'the feed lacks the stand-up');
  await axe(alice, 'settings with a calendar feed');
  await shot(alice, 'settings-feed-desktop');
  await alice.getByRole('button', { name: 'Turn the feed off' }).click();
  await alice.getByRole('button', { name: 'Make a feed link' }).waitFor();
  check((await fetch(url)).status === 404, 'a revoked feed still answers');
});

await test('a calendar file is read in a dry run, then imported', async () => {
  // A weekly lesson with a 10-minute alarm, one in the past, and a journal entry.
  const nextYear = new Date().getUTCFullYear() + 1;
  const ics = [
    'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Apple Inc.//macOS 14.0//EN',
    'BEGIN:VEVENT', 'UID:piano@example.com', 'SUMMARY:Piano lesson', `DTSTART;TZID=Europe/Berlin:${nextYear}0105T170000`,
    'RRULE:FREQ=WEEKLY;COUNT=10', 'BEGIN:VALARM', 'ACTION:DISPLAY', 'TRIGGER:-PT10M', 'END:VALARM', 'END:VEVENT',
    'BEGIN:VEVENT', 'UID:old@example.com', 'SUMMARY:Old meeting', 'DTSTART:20200101T090000Z', 'END:VEVENT',
    'BEGIN:VJOURNAL', 'UID:diary@example.com', 'SUMMARY:Diary', 'END:VJOURNAL', 'END:VCALENDAR', '',
  ].join('\r\n');
  await alice.getByLabel('Calendar file').setInputFiles({ name: 'lessons.ics', mimeType: 'text/calendar', buffer: Buffer.from(ics) });
  await alice.getByRole('heading', { name: 'In lessons.ics' }).waitFor();
  const list = alice.locator('section[aria-labelledby="import-heading"]');
  check((await list.textContent()).includes('Piano lesson · 10 min before'), 'the dry run does not show the reminder');
  check((await list.textContent()).includes('every occurrence is in the past'), 'the dry run does not say why the old one is skipped');
  const before = await (await alice.request.get(`${BASE}/bff/api/tasks`)).json();
  check(!before.tasks.some((t) => t.name === 'Piano lesson'), 'the dry run created a task');
  await axe(alice, 'settings with an import dry run');
  await shot(alice, 'settings-import-desktop');
  await alice.getByRole('button', { name: 'Import 1 reminder' }).click();
  await alice.getByRole('heading', { name: 'Imported from lessons.ics' }).waitFor();
  const after = await (await alice.request.get(`${BASE}/bff/api/tasks`)).json();
  const piano = after.tasks.find((t) => t.name === 'Piano lesson');
  check(piano && piano.repeats?.rrule === 'FREQ=WEEKLY;COUNT=10' && piano.timeZone === 'Europe/Berlin', `imported as ${JSON.stringify(piano)}`);
});

await test('opting out of telemetry stops the reports', async () => {
  // Saved with the rest of the profile: a default address and weekend quiet hours too.
  await alice.getByLabel('Email address').fill('alice@example.com');
  await alice.getByRole('button', { name: 'Add quiet hours' }).click();
  const quiet = alice.getByRole('group', { name: 'Quiet hours 1', exact: true });
  for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await quiet.getByRole('checkbox', { name: day, exact: true }).uncheck();
  await quiet.getByLabel('to', { exact: true }).fill('09:30');
  await alice.getByLabel(/Share anonymous feature usage/).uncheck();
  await alice.getByRole('button', { name: 'Save settings' }).click();
  await alice.getByText('Saved.').waitFor();
  let reported = false;
  alice.on('request', (r) => {
    if (r.url().endsWith('/bff/telemetry')) reported = true;
  });
  await alice.getByRole('link', { name: 'Tasks', exact: true }).click();
  await alice.getByLabel('Search tasks').fill('tea');
  await alice.getByRole('status').filter({ hasText: 'matching “tea”' }).waitFor();
  check(!reported, 'a telemetry report was sent after opting out');
});

await test('settings follow the user to another browser', async () => {
  const other = await newPage(BASE);
  await signInLocal(other, 'alice');
  await other.getByRole('link', { name: 'Settings' }).click();
  await other.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
  const email = other.getByLabel('Email address');
  await other.waitForFunction(() => document.querySelector('#default-email')?.value === 'alice@example.com');
  check((await email.inputValue()) === 'alice@example.com', 'the default email did not follow');
  const quiet = other.getByRole('group', { name: 'Quiet hours 1', exact: true });
  check(await quiet.getByRole('checkbox', { name: 'Sat', exact: true }).isChecked(), 'quiet hours did not follow');
  check(!(await quiet.getByRole('checkbox', { name: 'Mon', exact: true }).isChecked()), 'quiet hours days wrong');
  check((await quiet.getByLabel('to', { exact: true }).inputValue()) === '09:30', 'quiet hours end wrong');
  check(!(await other.getByLabel(/Share anonymous feature usage/).isChecked()), 'the telemetry opt-out did not follow');
  await axe(other, 'settings with quiet hours');
  await shot(other, 'settings-quiet-desktop');
  // The task form's preview says where quiet hours hold an email back.
  await other.goto('/tasks/new');
  await other.getByLabel('Name', { exact: true }).fill('Put the bins out');
  await other.getByLabel('Date and time').fill(nextSaturdayAt('23:30'));
  await other.getByRole('checkbox', { name: 'Email', exact: true }).check();
  await other.locator('.preview .note', { hasText: 'email sent at Sun 09:30 (quiet hours)' }).first().waitFor();
  await axe(other, 'task form with a quiet-hours note');
  await shot(other, 'task-form-quiet-desktop');
  // Urgent: nothing waits, and the preview says nothing.
  await other.getByRole('checkbox', { name: /^Urgent/ }).check();
  await other.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length === 1 && !document.querySelector('.preview .note'));
  await other.context().close();
});

await test('a second user sees none of the first user’s tasks', async () => {
  const bob = await newPage(BASE);
  await signInLocal(bob, 'bob');
  await bob.getByRole('link', { name: 'Tasks', exact: true }).click();
  await bob.getByRole('status').filter({ hasText: '0 tasks' }).waitFor();
  await bob.goto(weeklyUrl);
  await bob.getByRole('alert').filter({ hasText: 'Not found' }).waitFor();
  await bob.context().close();
});

await test('deleting a task removes it', async () => {
  await alice.goto(weeklyUrl);
  await alice.getByRole('button', { name: 'Delete' }).click();
  await alice.getByRole('button', { name: 'Delete for good' }).click();
  await alice.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
  // The list has loaded (another task is on it), without the deleted one.
  await alice.getByRole('link', { name: 'Tea is ready' }).waitFor();
  check((await alice.getByRole('link', { name: 'Team stand-up' }).count()) === 0, 'the deleted task is still listed');
});

if (NTFY_PORT) {
  await test('a destination is added in Settings, sent a test, chosen on a task and removed', async () => {
    const page = await newPage(BASE);
    await signInLocal(page, 'dana');
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    const section = page.locator('section[aria-labelledby="destinations-heading"]');
    await section.getByText('No destinations yet.').waitFor();
    // A URL no service reads is refused at its field.
    await page.getByLabel('Destination name').fill('Phone');
    await page.getByLabel('Destination URL').fill('nope://example.com/alerts');
    await page.getByRole('button', { name: 'Add destination' }).click();
    await page.locator('#destination-url[aria-invalid="true"]').waitFor();
    check((await page.locator('#destination-url-error').textContent()).length > 0, 'no message for the URL');
    await page.getByLabel('Destination URL').fill(`ntfy://127.0.0.1:${NTFY_PORT}/chime-e2e`);
    await page.getByRole('button', { name: 'Add destination' }).click();
    const item = section.getByRole('list', { name: 'Your destinations' }).getByRole('listitem').filter({ hasText: 'Phone' });
    await item.waitFor();
    check((await item.locator('.tag').textContent()) === 'ntfy', 'the service is not named');
    check((await page.getByLabel('Destination URL').inputValue()) === '', 'the add form kept the URL');
    // The test notification goes out now, to the receiver; the result is shown beside it.
    await item.getByRole('button', { name: 'Send test to Phone' }).click();
    await item.locator('.test-result', { hasText: 'Test sent to Phone' }).waitFor();
    await axe(page, 'settings with a destination');
    await shot(page, 'settings-destinations-desktop');

    // A task that also sends there, far enough ahead not to fire during the run.
    await page.goto('/tasks/new');
    await page.getByLabel('Name', { exact: true }).fill('Check the phone');
    await page.getByLabel('Date and time').fill(nextMonday());
    await page.getByLabel('Time zone').selectOption('Europe/Berlin');
    await page.getByRole('group', { name: 'Also send to' }).getByRole('checkbox', { name: 'Phone (ntfy)' }).check();
    await axe(page, 'task form with a destination');
    await page.getByRole('button', { name: 'Create task' }).click();
    await page.getByRole('heading', { name: 'Check the phone', level: 1 }).waitFor();
    await page.locator('dd', { hasText: 'Phone (ntfy)' }).waitFor();
    check((await page.locator('dd.destinations-sent').evaluate((dd) => dd.previousElementSibling.textContent)) === 'Also sends to', 'not listed as a destination');
    await axe(page, 'task page with a destination');
    await shot(page, 'task-destinations-desktop');
    const taskPath = new URL(page.url()).pathname;
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit task', level: 1 }).waitFor();
    check(await page.getByRole('group', { name: 'Also send to' }).getByRole('checkbox', { name: 'Phone (ntfy)' }).isChecked(), 'the destination is not read back');

    const phone = await newPage(BASE, PHONE);
    await signInLocal(phone, 'dana');
    await phone.goto('/settings');
    await phone.getByRole('list', { name: 'Your destinations' }).getByRole('listitem').first().waitFor();
    await axe(phone, 'settings with a destination (phone)');
    await shot(phone, 'settings-destinations-phone');
    await phone.goto(taskPath);
    await phone.locator('dd', { hasText: 'Phone (ntfy)' }).waitFor();
    await axe(phone, 'task page with a destination (phone)');
    await shot(phone, 'task-destinations-phone');
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `the task page is ${overflow}px wider than the phone`);
    await phone.context().close();

    // Removed, once confirmed.
    await page.goto('/settings');
    await item.getByRole('button', { name: 'Remove Phone' }).click();
    await page.getByRole('alertdialog').getByRole('button', { name: 'Remove for good' }).click();
    await section.getByText('No destinations yet.').waitFor();
    // A task that still names it says so, and saving drops it. (Whether a task keeps a removed
    // destination's id is the server's choice: the form handles both.)
    await page.goto(`${taskPath}/edit`);
    await page.getByRole('heading', { name: 'Edit task', level: 1 }).waitFor();
    const removed = page.locator('.also-send-to .removed');
    await page.locator('.also-send-to .removed, p.hint:has-text("add a destination in Settings")').first().waitFor();
    if ((await removed.count()) > 0) {
      check(/removed destination: saving drops it/.test(await removed.textContent()), 'the removed destination is not explained');
      await page.getByRole('button', { name: 'Save changes' }).click();
    } else {
      await page.getByRole('button', { name: 'Cancel' }).click();
    }
    await page.getByRole('heading', { name: 'Check the phone', level: 1 }).waitFor();
    check((await page.locator('dd.destinations-sent').count()) === 0, 'the task still sends to the removed destination');
    await page.context().close();
  });
} else {
  console.log('skip destinations (CHIME_E2E_NTFY_PORT not set)');
}

await test('every screen at phone size is accessible', async () => {
  const phone = await newPage(BASE, PHONE);
  await phone.goto('/');
  await phone.getByRole('heading', { name: /Chime/ }).waitFor();
  await shot(phone, 'signin-phone');
  await signInLocal(phone, 'alice');
  // Something to show: a task made through the BFF as the app would (session + CSRF token).
  const made = await phone.evaluate(async (start) => {
    const { csrfToken } = await (await fetch('/bff/session')).json();
    const r = await fetch('/bff/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
      body: JSON.stringify({ name: 'Water the plants', startDate: start, timeZone: 'Europe/Berlin', repeats: { frequency: 2, period: 'day' } }),
    });
    return r.status;
  }, nextMonday());
  check(made === 201, `creating through the BFF: ${made}`);
  const screens = [
    ['today', '/', 'Today'],
    ['upcoming', '/upcoming', 'Upcoming'],
    ['tasks', '/tasks', 'Tasks'],
    ['task-form', '/tasks/new', 'New task'],
    ['inbox', '/inbox', 'Inbox'],
    ['settings', '/settings', 'Settings'],
  ];
  for (const [name, path, heading] of screens) {
    await phone.goto(path);
    await phone.getByRole('heading', { name: heading, level: 1 }).waitFor();
    if (name === 'task-form') await phone.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length > 0);
    if (name === 'tasks') await phone.getByRole('status').first().waitFor();
    await axe(phone, `${name} (phone)`);
    // Today's phone screenshot is taken with reminders open (the Today test).
    if (name !== 'today') await shot(phone, `${name}-phone`);
    const wider = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wider <= 0, `${name} is ${wider}px wider than the phone`);
  }
  const task = await phone.evaluate(async () => (await (await fetch('/bff/tasks')).json()).tasks[0].id);
  await phone.goto(`/tasks/${task}`);
  await phone.getByRole('heading', { name: 'History' }).waitFor();
  await axe(phone, 'task (phone)');
  await shot(phone, 'task-phone');
  // No horizontal scrolling at phone width.
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await phone.context().close();
});

// ---- Dark mode, the phone's bottom navigation and keyboard shortcuts ----------------------

/** Whether the page is painted dark: the canvas colour, as the stylesheet set it. */
async function paintedDark(page) {
  return page.evaluate(() => {
    const [r, g, b] = getComputedStyle(document.documentElement).backgroundColor.match(/\d+/g).map(Number);
    return r + g + b < 3 * 80;
  });
}

/** A one-time task of the signed-in user due `seconds` from now, made through the BFF. */
async function taskDueIn(page, name, seconds) {
  const status = await page.evaluate(
    async ([name, startDate]) => {
      const { csrfToken } = await (await fetch('/bff/session')).json();
      const r = await fetch('/bff/tasks', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
        body: JSON.stringify({ name, startDate, timeZone: 'Europe/Berlin' }),
      });
      return r.status;
    },
    [name, new Date(Date.now() + seconds * 1000).toISOString()],
  );
  check(status === 201, `creating ${name}: ${status}`);
}

/** Goes to a main screen and waits until it shows what it loads. */
async function openScreen(page, name, path, heading) {
  await page.goto(path);
  await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
  if (name === 'task-form') await page.waitForFunction(() => document.querySelectorAll('.preview ol.occurrences > li').length > 0);
  if (name === 'tasks') await page.getByRole('status').first().waitFor();
  if (name === 'upcoming') await page.locator('section.day').first().waitFor();
  if (name === 'inbox') {
    // The two reminders made below, open by now or arriving live.
    const open = page.getByRole('list', { name: 'Open reminders' });
    await open.getByRole('link', { name: 'Feed the cat' }).waitFor();
    await open.getByRole('link', { name: 'Stretch your legs' }).waitFor();
  }
  if (name === 'settings') await page.getByRole('heading', { name: 'Webhook' }).waitFor();
}

// Upcoming by its own path: the home route is Today's.
const THEMED = [
  ['today', '/', 'Today'],
  ['upcoming', '/upcoming', 'Upcoming'],
  ['tasks', '/tasks', 'Tasks'],
  ['task-form', '/tasks/new', 'New task'],
  ['settings', '/settings', 'Settings'],
  ['inbox', '/inbox', 'Inbox'],
];

await test('dark mode follows the system setting, and every main screen passes axe in it', async () => {
  const page = await newPage(BASE);
  // Chromium's emulated prefers-color-scheme (the DevTools protocol's Emulation.setEmulatedMedia).
  await page.emulateMedia({ colorScheme: 'dark' });
  await signInLocal(page, 'theo');
  check(await paintedDark(page), 'a dark system setting is not followed');
  check((await page.evaluate(() => document.documentElement.getAttribute('data-theme'))) === null, 'a theme is set without a choice');
  // Something on every screen: a weekly task, and two reminders that fall due now (open in
  // the inbox; the shortcuts test below settles them).
  await page.goto('/tasks/new');
  await page.getByLabel('Name', { exact: true }).fill('Piano practice');
  await page.getByLabel('Date and time').fill(nextMonday());
  await page.getByLabel('Time zone').selectOption('Europe/Berlin');
  await page.getByLabel('Repeating').check();
  await page.getByRole('button', { name: 'Create task' }).click();
  await page.getByRole('heading', { name: 'Piano practice', level: 1 }).waitFor();
  await axe(page, 'task (dark)');
  await taskDueIn(page, 'Feed the cat', 2);
  await taskDueIn(page, 'Stretch your legs', 2);
  for (const [name, path, heading] of THEMED) {
    await openScreen(page, name, path, heading);
    await axe(page, `${name} (dark)`);
    await shot(page, `${name}-dark-desktop`);
  }
  await page.context().close();
});

await test('on a phone the main destinations are a bottom bar, in reach and usable, in both themes', async () => {
  const phone = await newPage(BASE, PHONE);
  await signInLocal(phone, 'theo');
  const nav = phone.getByRole('navigation', { name: 'Main' });
  const bar = await nav.boundingBox();
  check(Math.abs(bar.y + bar.height - PHONE.height) <= 1, `the navigation is not at the bottom: ${JSON.stringify(bar)}`);
  const links = await nav.getByRole('link').all();
  check(links.length >= 5, `${links.length} destinations in the bar`);
  for (const link of links) {
    const box = await link.boundingBox();
    check(box.width >= 44 && box.height >= 44, `${await link.textContent()} is ${box.width}×${box.height}px`);
    check(Math.abs(box.y - (await links[0].boundingBox()).y) <= 1, 'the destinations are not on one row');
  }
  // The top bar keeps the brand and the account, on one row.
  const banner = await phone.getByRole('banner').boundingBox();
  check(banner.height < 80, `the top bar is ${banner.height}px high`);
  await phone.getByRole('banner').getByRole('button', { name: 'Sign out' }).waitFor();
  await phone.goto('/upcoming');
  await phone.getByRole('heading', { name: 'Upcoming', level: 1 }).waitFor();
  check((await nav.getByRole('link', { name: 'Upcoming' }).getAttribute('aria-current')) === 'page', 'Upcoming is not current');
  await nav.getByRole('link', { name: /^Inbox/ }).click();
  await phone.getByRole('heading', { name: 'Inbox', level: 1 }).waitFor();
  check((await nav.getByRole('link', { name: /^Inbox/ }).getAttribute('aria-current')) === 'page', 'Inbox is not current');
  check((await nav.getByRole('link', { name: 'Upcoming' }).getAttribute('aria-current')) === null, 'Upcoming is still current');
  await nav.getByRole('link', { name: 'Tasks', exact: true }).click();
  await phone.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
  // The last of the page scrolls clear of the bar.
  const hidden = await phone.evaluate(() => {
    window.scrollTo(0, document.documentElement.scrollHeight);
    const last = [...document.querySelectorAll('main > *')].at(-1).getBoundingClientRect();
    return last.bottom - document.querySelector('nav[aria-label="Main"]').getBoundingClientRect().top;
  });
  check(hidden <= 0, `the bar covers ${hidden}px of the page's end`);
  await phone.emulateMedia({ colorScheme: 'dark' });
  for (const [name, path, heading] of THEMED) {
    if (name === 'task-form') continue;
    await openScreen(phone, name, path, heading);
    await axe(phone, `${name} (dark, phone)`);
    await shot(phone, `${name}-dark-phone`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${name} is ${overflow}px wider than the phone`);
  }
  await phone.context().close();
});

await test('a theme chosen in Settings wins over the system’s, in this browser, from the first paint', async () => {
  // No service worker: the check below keeps the app's script away with a route, which a
  // worker's cache would bypass.
  const context = await browser.newContext({ baseURL: BASE, viewport: DESKTOP, locale: 'en-GB', timezoneId: 'Europe/Berlin', serviceWorkers: 'block' });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  await signInLocal(page, 'theo');
  await page.goto('/settings');
  await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
  check(!(await paintedDark(page)), 'dark under a light system setting');
  await page.getByRole('group', { name: 'Theme' }).getByRole('radio', { name: 'Dark' }).check();
  check(await paintedDark(page), 'choosing Dark did not apply it');
  check((await page.evaluate(() => localStorage.getItem('chime.theme'))) === 'dark', 'the choice is not kept');
  await axe(page, 'settings (Dark chosen)');
  // The head script applies it on its own, before the app's code runs (here: without it).
  await page.route('**/assets/*.js', (route) => route.abort());
  await page.goto('/inbox');
  await page.waitForLoadState('load');
  check((await page.evaluate(() => document.getElementById('root').childElementCount)) === 0, 'the app ran');
  check(await paintedDark(page), 'the stored choice is not applied before the app runs');
  await page.unroute('**/assets/*.js');
  for (const [name, path, heading] of THEMED.filter(([n]) => n === 'tasks' || n === 'inbox')) {
    await openScreen(page, name, path, heading);
    await axe(page, `${name} (Dark chosen)`);
  }
  // Light wins over a dark system; System follows it again.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/settings');
  await page.getByRole('radio', { name: 'Light' }).check();
  check(!(await paintedDark(page)), 'Light did not win over a dark system setting');
  await axe(page, 'settings (Light chosen, dark system)');
  await page.getByRole('radio', { name: 'System' }).check();
  check(await paintedDark(page), 'System does not follow the system again');
  check((await page.evaluate(() => localStorage.getItem('chime.theme'))) === null, 'System left a choice stored');
  await context.close();
});

await test('keyboard shortcuts go places, act on a focused inbox reminder, and ? lists them in a modal dialog', async () => {
  const page = await newPage(BASE);
  await signInLocal(page, 'theo');
  await page.keyboard.press('g');
  await page.keyboard.press('i');
  await page.getByRole('heading', { name: 'Inbox', level: 1 }).waitFor();
  // d and s act on the focused open reminder; focus goes on to the next.
  const open = page.getByRole('list', { name: 'Open reminders' });
  await open.getByRole('link', { name: 'Stretch your legs' }).waitFor();
  await open.getByRole('link', { name: 'Feed the cat' }).focus();
  await page.keyboard.press('d');
  await open.getByRole('link', { name: 'Feed the cat' }).waitFor({ state: 'detached' });
  await page.waitForFunction(() => document.activeElement?.textContent === 'Stretch your legs');
  await page.keyboard.press('s');
  await page.getByRole('list', { name: 'Snoozed reminders' }).getByRole('link', { name: 'Stretch your legs' }).waitFor();
  await page.getByText('Nothing waiting for you.').waitFor();
  await page.reload();
  await page.getByText('Nothing waiting for you.').waitFor();
  await page.getByRole('list', { name: 'Snoozed reminders' }).getByRole('link', { name: 'Stretch your legs' }).waitFor();
  // g then u, g then t (home), n, and / into the search, whose keys are then typing.
  await page.keyboard.press('g');
  await page.keyboard.press('u');
  await page.getByRole('heading', { name: 'Upcoming', level: 1 }).waitFor();
  check(new URL(page.url()).pathname === '/upcoming', `g u went to ${page.url()}`);
  await page.keyboard.press('g');
  await page.keyboard.press('t');
  await page.waitForURL((url) => url.pathname === '/');
  await page.keyboard.press('n');
  await page.getByRole('heading', { name: 'New task', level: 1 }).waitFor();
  await page.keyboard.press('/');
  await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
  await page.waitForFunction(() => document.activeElement?.id === 'search');
  await page.keyboard.type('gun');
  check((await page.getByLabel('Search tasks').inputValue()) === 'gun', 'the slash or a letter did not stay in the search');
  check(new URL(page.url()).pathname === '/tasks', 'keys typed in the search went places');
  // ? opens the list as a modal dialog; Tab stays in it; Escape closes it and focus returns.
  const settingsLink = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' });
  await settingsLink.focus();
  await page.keyboard.press('?');
  const dialog = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await dialog.waitFor();
  check(await dialog.evaluate((d) => d.matches(':modal')), 'the dialog is not modal');
  check((await dialog.textContent()).includes('Go to Upcoming'), 'the dialog does not list g u');
  for (const key of ['Tab', 'Shift+Tab', 'Tab']) {
    await page.keyboard.press(key);
    check(await dialog.evaluate((d) => d.contains(document.activeElement)), `${key} left the dialog`);
  }
  await axe(page, 'shortcuts dialog');
  await shot(page, 'help-overlay-desktop');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  check(await settingsLink.evaluate((a) => a === document.activeElement), 'focus did not return to where it was');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.keyboard.press('?');
  await dialog.waitFor();
  await axe(page, 'shortcuts dialog (dark)');
  await shot(page, 'help-overlay-dark-desktop');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'hidden' });
  // Turned off in Settings, a key is only a key.
  await page.goto('/settings');
  await page.getByRole('checkbox', { name: /Keyboard shortcuts/ }).uncheck();
  await page.locator('h1').focus();
  await page.keyboard.press('n');
  await page.keyboard.press('?');
  check(new URL(page.url()).pathname === '/settings' && !(await dialog.isVisible()), 'a shortcut acted while turned off');
  await page.context().close();
});

await test('the app is installable: a manifest with icons, and a service worker in control', async () => {
  await alice.goto('/');
  await alice.getByRole('heading', { name: 'Today', level: 1 }).waitFor();
  const manifest = await alice.evaluate(async () => {
    const link = document.querySelector('link[rel="manifest"]')?.getAttribute('href');
    const r = await fetch(link);
    const body = await r.json();
    const icons = await Promise.all(body.icons.map(async (i) => (await fetch(i.src)).headers.get('content-type')));
    return { type: r.headers.get('content-type'), body, icons };
  });
  check(manifest.type?.includes('manifest+json'), `the manifest is served as ${manifest.type}`);
  check(manifest.body.display === 'standalone' && manifest.body.start_url === '/', 'the manifest does not start the app standalone');
  check(manifest.body.icons.some((i) => i.sizes === '512x512' && i.purpose === 'maskable'), 'no maskable icon');
  check(manifest.icons.every((t) => t === 'image/png'), `icons are ${manifest.icons}`);
  // The worker takes control once registered: reload and it serves the page.
  await alice.evaluate(() => navigator.serviceWorker.ready);
  await alice.reload();
  await alice.getByRole('heading', { name: 'Today', level: 1 }).waitFor();
  check(await alice.evaluate(() => Boolean(navigator.serviceWorker.controller)), 'no service worker controls the page');
});

await test('the keyboard reaches the navigation through the skip link order', async () => {
  await alice.goto('/');
  await alice.getByRole('heading', { name: 'Today', level: 1 }).waitFor();
  await alice.keyboard.press('Tab');
  check((await alice.evaluate(() => document.activeElement?.textContent)) === 'Skip to content', 'the first tab stop is not the skip link');
  await alice.keyboard.press('Enter');
  check((await alice.evaluate(() => document.activeElement?.id)) === 'main', 'the skip link does not move focus to the content');
});

if (OIDC_BASE) {
  await test('OIDC sign-in: authorization code with PKCE against the real provider, tokens kept server-side', async () => {
    const carol = await newPage(OIDC_BASE);
    // The redirects of the flow, for the log if it fails.
    const hops = [];
    carol.on('framenavigated', (f) => f === carol.mainFrame() && hops.push(f.url()));
    carol.on('requestfailed', (r) => hops.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
    try {
    await carol.goto('/');
    await axe(carol, 'OIDC sign-in');
    await carol.getByRole('link', { name: 'Sign in with your organisation' }).click();
    await carol.getByLabel('Username').fill('carol');
    await carol.getByRole('button', { name: 'Continue' }).click();
    await carol.getByRole('heading', { name: 'Today', level: 1 }).waitFor();
    await carol.getByText('carol', { exact: true }).waitFor();
    await carol.getByText('No reminders yet.').waitFor();
    // (Cookies ignore ports: the provider's own, on the same loopback host, are here too.)
    const cookies = await carol.context().cookies(OIDC_BASE);
    const session = cookies.find((c) => c.name === 'chime_session');
    check(session?.httpOnly && session.secure && session.sameSite === 'Lax', `session cookie: ${JSON.stringify(session)}`);
    check(!cookies.some((c) => /^ey[\w-]+\.[\w-]+\./.test(c.value)), 'a token in a cookie');
    const storage = await carol.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    check(!storage.includes('ey'), 'a token in web storage');
    // The session works for writes, through the provider's access token.
    await carol.goto('/tasks/new');
    await carol.getByLabel('Name', { exact: true }).fill('Carol’s reminder');
    await carol.getByRole('button', { name: 'Create task' }).click();
    await carol.getByRole('heading', { name: 'Carol’s reminder', level: 1 }).waitFor();
    await carol.getByRole('button', { name: 'Sign out' }).click();
    await carol.getByRole('link', { name: 'Sign in with your organisation' }).waitFor();
    } catch (error) {
      console.log(`  navigations: ${hops.map((h) => h.replace(/(code|state|nonce|code_challenge)=[^&]+/g, '$1=…')).join('\n    ')}`);
      throw error;
    }
    await carol.context().close();
  });
} else {
  console.log('skip OIDC sign-in (CHIME_OIDC_URL not set)');
}

await browser.close();
console.log(`${failures === 0 ? 'passed' : `${failures} failed`} in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
process.exit(failures === 0 ? 0 : 1);
