// How fast the first screen is on a server with 1,000 tasks: signs in by name on a running
// `chime serve` (the embedded default), creates 1,000 tasks through the BFF (once: a user who
// already has them is reused), then loads `/` in headless Chromium RUNS times, each in a fresh
// browser context (no HTTP cache, no service worker yet), and reads the browser's own timings:
// first contentful paint, the moment Today's content (its first list or its empty message)
// entered the page, and the `/bff/home` request. Prints one line per run and a JSON summary.
//
//   CHIME_URL=http://127.0.0.1:8080 node e2e/perf.mjs
//
// Env: CHIME_URL (default http://127.0.0.1:8080), PERF_USER (default perf), PERF_TASKS
// (default 1000), RUNS (default 3), CHROMIUM (default /usr/bin/chromium). Creating honours the
// server's write limit (429 and Retry-After); a server started with a higher
// CHIME_LIMITS__WRITES_PER_SECOND fills faster. Only the page loads are measured.

import { chromium } from 'playwright-core';

const BASE = process.env.CHIME_URL ?? 'http://127.0.0.1:8080';
const USER = process.env.PERF_USER ?? 'perf';
const TASKS = Number(process.env.PERF_TASKS ?? 1000);
const RUNS = Number(process.env.RUNS ?? 3);

/** A signed-in session: its cookie header and CSRF token. */
async function signIn() {
  const session = await fetch(`${BASE}/bff/session`);
  const { csrfToken } = await session.json();
  const cookies = session.headers.getSetCookie().map((c) => c.split(';')[0]);
  const answer = await fetch(`${BASE}/bff/auth/local`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken, cookie: cookies.join('; ') },
    body: JSON.stringify({ user: USER }),
  });
  if (!answer.ok) throw new Error(`sign-in: ${answer.status} ${await answer.text()}`);
  const signedIn = answer.headers.getSetCookie().map((c) => c.split(';')[0]);
  const jar = new Map([...cookies, ...signedIn].map((c) => [c.split('=')[0], c]));
  return { cookie: [...jar.values()].join('; '), csrf: (await answer.json()).csrfToken };
}

async function bff(session, method, path, body) {
  const send = () =>
    fetch(`${BASE}/bff${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf, cookie: session.cookie },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let response = await send();
  // The per-user write limit (limits.writes_per_second): wait as the server says, then again.
  while (response.status === 429) {
    const seconds = Number(response.headers.get('retry-after') ?? '1');
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    response = await send();
  }
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : response.json();
}

/** Tasks of a few kinds, as a person's list would have: daily, weekly, monthly, one-time. */
function task(i) {
  const start = new Date(Date.now() + (i % 48) * 3_600_000 + 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const kinds = [
    { repeats: { frequency: 1, period: 'day' } },
    { repeats: { frequency: 1, period: 'week', on: ['monday', 'thursday'] } },
    { repeats: { frequency: 1, period: 'month' } },
    {},
  ];
  return { name: `Task ${i + 1}`, startDate: start, timeZone: 'Europe/Berlin', notify: { inApp: true }, ...kinds[i % kinds.length] };
}

const session = await signIn();
const have = (await bff(session, 'GET', '/home')).taskCount;
const t0 = Date.now();
for (let i = have; i < TASKS; i += 10) {
  await Promise.all(Array.from({ length: Math.min(10, TASKS - i) }, (_, k) => bff(session, 'POST', '/tasks', task(i + k))));
}
console.log(`${TASKS} tasks for ${USER} (${TASKS - have} created in ${Date.now() - t0} ms)`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const url = new URL(BASE);
const runs = [];
for (let run = 1; run <= RUNS; run += 1) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'Europe/Berlin' });
  await context.addCookies(
    session.cookie.split('; ').map((c) => {
      const [name, ...value] = c.split('=');
      return { name, value: value.join('='), domain: url.hostname, path: '/', secure: url.protocol === 'https:', httpOnly: true };
    }),
  );
  // When Today's content first appears: its first list of reminders, or its empty message.
  await context.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.querySelector('.today section ul.list > li, .today .empty')) {
        window.__firstContent = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  const page = await context.newPage();
  await page.goto('/', { waitUntil: 'load' });
  await page.waitForFunction(() => window.__firstContent !== undefined, undefined, { timeout: 60_000 });
  const timing = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime;
    const home = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/bff/home'));
    const nav = performance.getEntriesByType('navigation')[0];
    const script = performance.getEntriesByType('resource').find((r) => /\/assets\/.*\.js$/.test(r.name));
    return {
      scriptBytes: script ? script.transferSize : -1,
      firstContentfulPaintMs: Math.round(fcp ?? -1),
      todayContentMs: Math.round(window.__firstContent),
      homeRequestMs: home ? Math.round(home.responseEnd - home.startTime) : -1,
      homeBytes: home ? home.transferSize : -1,
      domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd),
    };
  });
  runs.push(timing);
  console.log(`run ${run}: ${JSON.stringify(timing)}`);
  await context.close();
}
await browser.close();
const median = (key) => runs.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
console.log(
  JSON.stringify({ tasks: TASKS, runs: runs.length, median: { firstContentfulPaintMs: median('firstContentfulPaintMs'), todayContentMs: median('todayContentMs'), homeRequestMs: median('homeRequestMs') } }),
);
