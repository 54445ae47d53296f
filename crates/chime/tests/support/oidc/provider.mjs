// A real OpenID Connect provider (the certified `oidc-provider` package) on loopback, for
// Chime's integration tests (crates/chime/tests/it/oidc.rs starts one per test).
//
//   node provider.mjs [--algs RS256,ES256,EdDSA]
//
// Listens on 127.0.0.1 on a free port and prints `ready <port>` on stdout; exits when stdin
// closes, so it never outlives the test that started it.
//
// Tokens come non-interactively from the client_credentials grant. Clients `alice`, `bob` and
// `support` (secret `secret`) each get a JWT access token whose `sub` is the client id; the
// extra claims are `preferred_username` (`<client>@example.com`) and `roles` (`support` has
// `chime-admin`). The resource indicator picks the audience and the signing algorithm:
// `urn:chime:rs256` -> aud `chime`, RS256; `urn:other:es256` -> aud `other`, ES256; ...
//
// Test-only endpoints (never part of a real provider):
//   GET  /test/stats            {"jwks": n, "discovery": n}: requests served so far
//   POST /test/rotate?keep=1    new signing keys (new kids) for every algorithm; with keep=1
//                               the old public keys stay published (after the new ones),
//                               without it they are dropped. Answers {"kids": {...}}.
//   POST /test/sign             {"alg", "claims", "header"?}: a JWS over `claims` made with
//                               the current key of `alg` (kid overridable through `header`),
//                               for tokens the provider would never issue (expired, wrong iss)
//   GET  /test/public-pem?alg=  the current public key of `alg` as SPKI PEM
//
// Interactive sign-in, for the web app's end-to-end tests (the BFF's authorization code +
// PKCE flow): client `chime-web` (secret `secret`, a native-type client so that its loopback
// redirect URI `http://127.0.0.1/bff/auth/callback` matches on any port, RFC 8252 7.3). The
// login page (`/interaction/<uid>`) asks for a user name and signs in whoever is named: the
// access token's `sub`. Consent is granted without a page (first-party client).

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// Stdout carries only the `ready` line, and the test stops reading after it: the library's own
// notices (it logs some with console.log during interactions) go to stderr, where a write can
// never fail with EPIPE and take the provider down mid-sign-in.
console.log = console.info = (...values) => console.error(...values);
process.stdout.on('error', () => undefined);

const args = process.argv.slice(2);
const algsArg = args.includes('--algs') ? args[args.indexOf('--algs') + 1] : 'RS256,ES256,EdDSA';
const algs = algsArg.split(',').filter(Boolean);

let generation = 0;

function generateKey(alg) {
  let pair;
  if (alg === 'RS256') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (alg === 'EdDSA') {
    pair = crypto.generateKeyPairSync('ed25519');
  } else {
    throw new Error(`unsupported alg ${alg}`);
  }
  const kid = `${alg.toLowerCase()}-${generation}-${crypto.randomBytes(4).toString('hex')}`;
  const jwk = { ...pair.privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
  // RSA keys are published without `alg`, so that a verifier derives it from `kty`; the
  // others name theirs.
  if (alg !== 'RS256') jwk.alg = alg;
  return { alg, kid, jwk, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

function generateKeys() {
  generation += 1;
  return Object.fromEntries(algs.map((alg) => [alg, generateKey(alg)]));
}

const RESOURCE = /^urn:(chime|other):(rs256|es256|eddsa)$/;
const ALG = { rs256: 'RS256', es256: 'ES256', eddsa: 'EdDSA' };

function makeProvider(issuer, signingKeys) {
  const provider = new Provider(issuer, {
    clients: [
      ...['alice', 'bob', 'support'].map((id) => ({
        client_id: id,
        client_secret: 'secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_post',
      })),
      {
        client_id: 'chime-web',
        client_secret: 'secret',
        application_type: 'native',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/bff/auth/callback'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    jwks: { keys: signingKeys.map((k) => k.jwk) },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? `urn:chime:${algs[0].toLowerCase()}`,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const match = RESOURCE.exec(indicator);
          if (!match || !algs.includes(ALG[match[2]])) {
            throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          }
          return {
            scope: 'tasks',
            audience: match[1],
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg: ALG[match[2]] } },
          };
        },
      },
    },
    extraTokenClaims: (_ctx, token) => ({
      preferred_username: `${token.clientId}@example.com`,
      roles: token.clientId === 'support' ? ['chime-admin'] : ['user'],
    }),
    ttl: { ClientCredentials: 300 },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  });
  return { provider, handle: provider.callback() };
}

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

function sign(key, header, claims) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  let signature;
  if (key.alg === 'RS256') {
    signature = crypto.sign('sha256', Buffer.from(input), key.privateKey);
  } else if (key.alg === 'ES256') {
    signature = crypto.sign('sha256', Buffer.from(input), {
      key: key.privateKey,
      dsaEncoding: 'ieee-p1363',
    });
  } else {
    signature = crypto.sign(null, Buffer.from(input), key.privateKey);
  }
  return `${input}.${b64url(signature)}`;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const stats = { jwks: 0, discovery: 0 };
let current = generateKeys();
let published = Object.values(current);
let issuer;
let active;

async function testRoute(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/test/stats') {
    return reply(res, 200, stats);
  }
  if (req.method === 'POST' && url.pathname === '/test/rotate') {
    const old = published;
    current = generateKeys();
    published = [...Object.values(current), ...(url.searchParams.get('keep') === '1' ? old : [])];
    active = makeProvider(issuer, published);
    const kids = Object.fromEntries(Object.values(current).map((k) => [k.alg, k.kid]));
    return reply(res, 200, { kids });
  }
  if (req.method === 'POST' && url.pathname === '/test/sign') {
    const { alg, claims, header } = await readJson(req);
    const key = current[alg];
    if (!key) return reply(res, 400, { error: `no ${alg} key` });
    const token = sign(key, { alg, typ: 'JWT', kid: key.kid, ...header }, claims);
    return reply(res, 200, { token, kid: key.kid });
  }
  if (req.method === 'GET' && url.pathname === '/test/public-pem') {
    const key = current[url.searchParams.get('alg')];
    if (!key) return reply(res, 400, { error: 'no such key' });
    return reply(res, 200, { pem: key.publicKey.export({ type: 'spki', format: 'pem' }), kid: key.kid });
  }
  return reply(res, 404, { error: 'not found' });
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The login page of an interaction, and its form's answer.
async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  if (req.method === 'GET' && !action) {
    const details = await active.provider.interactionDetails(req, res);
    if (details.prompt.name === 'consent') {
      // First-party client: grant what it asked for without a page.
      const { Grant } = active.provider;
      const grant = details.grantId
        ? await Grant.find(details.grantId)
        : new Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await active.provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><title>Test provider sign-in</title></head><body>
<main><h1>Test provider</h1><form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
<label for="login">Username</label> <input id="login" name="login" autocomplete="username" required>
<button type="submit">Continue</button></form></main></body></html>`);
    return;
  }
  if (req.method === 'POST' && action === 'login' && uid) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const login = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('login');
    if (!login) return reply(res, 400, { error: 'login required' });
    await active.provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  return reply(res, 404, { error: 'not found' });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((error) => reply(res, 500, { error: String(error) }));
    return;
  }
  if (url.pathname.startsWith('/test/')) {
    testRoute(req, res, url).catch((error) => reply(res, 500, { error: String(error) }));
    return;
  }
  if (url.pathname === '/jwks') stats.jwks += 1;
  if (url.pathname === '/.well-known/openid-configuration') stats.discovery += 1;
  active.handle(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  active = makeProvider(issuer, published);
  process.stdout.write(`ready ${port}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
