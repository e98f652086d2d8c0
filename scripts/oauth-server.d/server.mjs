// A test OAuth 2.0 authorization server for patchbay's end-to-end tests: panva's oidc-provider
// (pinned in package.json beside this file) with an in-memory store, listening on loopback over
// plain HTTP. Not patchbay code and not for production: every token, key and grant lives only as
// long as the process.
//
//   node server.mjs [--port N] [--host H] [--clients FILE] [--access-token-ttl S]
//                   [--refresh-token-ttl S] [--device-code-ttl S] [--device-poll-interval S]
//                   [--scopes "A B"] [--no-rotate-refresh-tokens] [--no-test-hooks]
//
// Every flag has an environment variable (flags win): OAUTH_SERVER_PORT (default 0: any free port),
// OAUTH_SERVER_HOST (127.0.0.1), OAUTH_SERVER_CLIENTS_FILE or OAUTH_SERVER_CLIENTS (the JSON
// itself), OAUTH_ACCESS_TOKEN_TTL (3600), OAUTH_REFRESH_TOKEN_TTL (1209600),
// OAUTH_DEVICE_CODE_TTL (600), OAUTH_DEVICE_POLL_INTERVAL (1), OAUTH_ROTATE_REFRESH_TOKENS (1),
// OAUTH_SERVER_SCOPES (extra scopes, beside openid, offline_access, profile, email and those
// in the clients' scope allow-lists), OAUTH_TEST_HOOKS (1). When ready it prints one line on stdout:
//
//   oauth-server listening at http://127.0.0.1:PORT
//
// and logs to stderr. The issuer is that URL; its metadata is at /.well-known/openid-configuration
// and /.well-known/oauth-authorization-server (RFC 8414). Endpoints: /token, /device/auth (RFC 8628
// device authorization), /device (user-code page), /token/introspection (RFC 7662),
// /token/revocation (RFC 7009), /me (userinfo), /jwks, /auth (authorization).
//
// Clients: a JSON array (or {"clients": [...]}) of objects with client_id, and optionally
// client_secret (absent: a public client, token_endpoint_auth_method "none"), grant_types
// (default: all of authorization_code, refresh_token, client_credentials and
// urn:ietf:params:oauth:grant-type:device_code; client_credentials is dropped for public
// clients), redirect_uris (default ["http://127.0.0.1/callback"] when authorization_code is
// allowed), token_endpoint_auth_method (default client_secret_basic), scope (an allow-list) and
// any other client metadata oidc-provider knows. Without a clients file there is one client,
// patchbay / patchbay-secret, allowed every grant.
//
// Refresh tokens: issued to every authorization_code and device_code grant of a client allowed
// the refresh_token grant (offline_access need not be asked for). Rotation is on: each refresh
// returns a new refresh token and consumes the old one; presenting a consumed one again fails
// with invalid_grant and revokes the whole grant (reuse detection), so its successor fails too.
//
// Test hooks (off with --no-test-hooks), JSON in and out:
//   POST /test/device/approve  {"user_code": "ABCD-EFGH", "account": "alice"}
//        or {"client_id": "patchbay", "account": "alice"}: approve the pending device codes of
//        that client. The next poll of the token endpoint gets the tokens. Answers
//        {"approved": [{"user_code", "client_id", "scope", "account"}]}, 404 when none matched,
//        409 when the code was used, denied or expired. The grant is recorded straight in
//        oidc-provider's store (its DeviceCode and Grant models), as its consent step would.
//        Add "via": "pages" to go through oidc-provider's own HTML pages instead, as a browser
//        would (user-code form, confirm, development login, consent; about 10 requests).
//   POST /test/device/deny     same selectors: the next poll gets access_denied.
//   GET  /test/device/pending  {"pending": [{"user_code", "client_id", "scope", "expires_at"}]}
//   POST /test/authorize       {"url": "<an authorization URL of this server>", "account": "erin"}:
//        walks oidc-provider's own pages as a browser would (development login as that account,
//        consent) and answers {"location": "<the client's redirect URI with code and state>"}
//        without following it; 409 when the walk ends elsewhere.
//   GET  /test/stats           {"token_requests": {"refresh_token": {"ok": N, "error": M}, ...}}:
//        token requests answered since start, by grant type.
//
// Providers' own paths lead to the standard endpoints, so a connection of any OAuth kind can
// name this server: /oauth/token (GitLab, JetBrains Space), /login/oauth/access_token (GitHub,
// which also answers errors with HTTP 200 there), /site/oauth2/access_token (Bitbucket Cloud),
// /rest/oauth2/latest/token (Bitbucket Data Center), /TENANT/oauth2/v2.0/token (Entra ID) lead
// to /token; /oauth/userinfo (GitLab) to /me; /oauth/authorize_device (GitLab),
// /login/device/code (GitHub), /device/code (Google) and /TENANT/oauth2/v2.0/devicecode
// (Entra ID) to /device/auth; each provider's authorization path (/oauth/authorize,
// /login/oauth/authorize, /site/oauth2/authorize, /rest/oauth2/latest/authorize, /oauth/auth,
// /TENANT/oauth2/v2.0/authorize) to /auth.
// The browser path works too: GET /device shows the user-code form, and oidc-provider's
// development login and consent pages (/interaction/UID) take any login name.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs, promisify } from 'node:util';

// Signing keys are made afresh each start (nothing outlives the process), on the thread pool while
// oidc-provider loads.
const keyPair = promisify(crypto.generateKeyPair)('rsa', { modulusLength: 2048 });

// stdout carries only the "listening" line: oidc-provider prints its notices with console.info
// (stdout), so console.log and console.info go to stderr. It also warns, while it is imported, on
// Node releases before 22; Node 20 runs it, so that one warning is dropped.
console.log = console.error;
console.info = console.error;
const warn = console.warn;
console.warn = (...args) => {
  if (!args.join(' ').includes('Unsupported runtime')) warn(...args);
};
const { default: Provider } = await import('oidc-provider');

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ALL_GRANTS = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT];

function log(...args) {
  process.stderr.write(`oauth-server: ${args.join(' ')}\n`);
}

function fail(message) {
  log(message);
  process.exit(2);
}

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    clients: { type: 'string' },
    'access-token-ttl': { type: 'string' },
    'refresh-token-ttl': { type: 'string' },
    'device-code-ttl': { type: 'string' },
    'device-poll-interval': { type: 'string' },
    'no-rotate-refresh-tokens': { type: 'boolean' },
    'no-test-hooks': { type: 'boolean' },
    scopes: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write('usage: oauth-server [--port N] [--host H] [--clients FILE] [--access-token-ttl S] [--refresh-token-ttl S] [--device-code-ttl S] [--device-poll-interval S] [--scopes "A B"] [--no-rotate-refresh-tokens] [--no-test-hooks]\n');
  process.exit(0);
}

function integer(name, flag, env, fallback, min) {
  const raw = flags[flag] ?? process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) fail(`--${flag} (${env}) must be an integer >= ${min}, not ${JSON.stringify(raw)}`);
  return value;
}

function enabled(flag, env) {
  if (flags[flag]) return false;
  const raw = process.env[env];
  return raw === undefined || raw === '' || !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
}

const port = integer('port', 'port', 'OAUTH_SERVER_PORT', 0, 0);
const host = flags.host ?? process.env.OAUTH_SERVER_HOST ?? '127.0.0.1';
const accessTokenTTL = integer('access token ttl', 'access-token-ttl', 'OAUTH_ACCESS_TOKEN_TTL', 3600, 1);
const refreshTokenTTL = integer('refresh token ttl', 'refresh-token-ttl', 'OAUTH_REFRESH_TOKEN_TTL', 14 * 24 * 3600, 1);
const deviceCodeTTL = integer('device code ttl', 'device-code-ttl', 'OAUTH_DEVICE_CODE_TTL', 600, 1);
const devicePollInterval = integer('device poll interval', 'device-poll-interval', 'OAUTH_DEVICE_POLL_INTERVAL', 1, 0);
const rotateRefreshTokens = enabled('no-rotate-refresh-tokens', 'OAUTH_ROTATE_REFRESH_TOKENS');
const testHooks = enabled('no-test-hooks', 'OAUTH_TEST_HOOKS');

function loadClients() {
  let text;
  let source;
  const file = flags.clients ?? process.env.OAUTH_SERVER_CLIENTS_FILE;
  if (file) {
    source = file;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      fail(`cannot read the clients file ${file}: ${err.message}`);
    }
  } else if (process.env.OAUTH_SERVER_CLIENTS) {
    source = 'OAUTH_SERVER_CLIENTS';
    text = process.env.OAUTH_SERVER_CLIENTS;
  } else {
    return [{ client_id: 'patchbay', client_secret: 'patchbay-secret' }];
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    fail(`${source} is not JSON: ${err.message}`);
  }
  const list = Array.isArray(parsed) ? parsed : parsed?.clients;
  if (!Array.isArray(list) || list.length === 0) fail(`${source} must hold a non-empty JSON array of clients (or {"clients": [...]})`);
  return list;
}

function normalizeClient(input) {
  if (!input || typeof input.client_id !== 'string' || !input.client_id) fail(`a client lacks a client_id: ${JSON.stringify(input)}`);
  const client = { ...input };
  const isPublic = client.client_secret === undefined || client.client_secret === null;
  if (isPublic) {
    delete client.client_secret;
    client.token_endpoint_auth_method ??= 'none';
  } else {
    client.token_endpoint_auth_method ??= 'client_secret_basic';
  }
  client.grant_types ??= ALL_GRANTS.filter((g) => !(client.token_endpoint_auth_method === 'none' && g === 'client_credentials'));
  const code = client.grant_types.includes('authorization_code');
  client.response_types ??= code ? ['code'] : [];
  // A loopback redirect of a native client matches any port (RFC 8252 section 7.3), as
  // command-line sign-ins need.
  if (code && !client.redirect_uris) {
    client.redirect_uris = ['http://127.0.0.1/callback'];
    client.application_type ??= 'native';
  }
  return client;
}

const clients = loadClients().map(normalizeClient);

// Scopes the server knows: the OpenID ones, those of --scopes, and those in the clients' scope
// allow-lists. oidc-provider drops a requested scope it does not know (without an error).
const scopes = new Set(['openid', 'offline_access', 'profile', 'email']);
for (const s of (flags.scopes ?? process.env.OAUTH_SERVER_SCOPES ?? '').split(/[\s,]+/)) if (s) scopes.add(s);
for (const c of clients) for (const s of (c.scope ?? '').split(' ')) if (s) scopes.add(s);

const { privateKey } = await keyPair;
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'oauth-server-rs256', use: 'sig', alg: 'RS256' };

// Device codes made since start, by user code, for the test hooks to find (oidc-provider's
// store can look a user code up but cannot list them).
const deviceCodes = new Map();

const server = http.createServer();
server.on('error', (err) => fail(`cannot listen on ${host}:${port}: ${err.message}`));
await new Promise((resolve) => server.listen(port, host, resolve));
const address = server.address();
const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
const issuer = `http://${urlHost}:${address.port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: [...scopes],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub, name: sub, preferred_username: sub, email: `${sub}@example.test`, email_verified: true,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      deviceInfo: (ctx) => ({ ip: ctx.ip, ua: ctx.get('user-agent') }),
    },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
    userinfo: { enabled: true },
  },
  pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
  // Refresh tokens without offline_access, and never bound to a browser session (a grant approved
  // through the test hook has none).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  rotateRefreshToken: rotateRefreshTokens,
  ttl: {
    AccessToken: accessTokenTTL,
    ClientCredentials: accessTokenTTL,
    RefreshToken: refreshTokenTTL,
    DeviceCode: deviceCodeTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: refreshTokenTTL,
  },
  clientBasedCORS: () => false,
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><title>${out.error}</title><h1>${out.error}</h1><p>${escapeHtml(out.error_description ?? '')}</p>`;
  },
});

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// RFC 8628 lets the server name the polling interval; oidc-provider leaves it out (clients then
// wait 5 s), so it is added here.
provider.on('device_authorization.success', (ctx, body) => {
  if (devicePollInterval > 0) body.interval = devicePollInterval;
  deviceCodes.set(body.user_code, {
    userCode: body.user_code,
    clientId: ctx.oidc.client.clientId,
    scope: ctx.oidc.params.scope ?? '',
    expiresAt: Date.now() + body.expires_in * 1000,
  });
  log(`device authorization for ${ctx.oidc.client.clientId}: user_code ${body.user_code}`);
});
provider.on('grant.success', (ctx) => {
  log(`token ${ctx.oidc.params.grant_type} for ${ctx.oidc.client?.clientId}: ok`);
});
provider.on('grant.error', (ctx, err) => {
  log(`token ${ctx.oidc.params?.grant_type} for ${ctx.oidc.client?.clientId ?? '?'}: ${err.error} (${err.error_detail ?? err.error_description ?? ''})`);
});
provider.on('server_error', (_ctx, err) => log(`server error: ${err.stack ?? err}`));

const userCodeChars = /[^BCDFGHJKLMNPQRSTVWXZ]/g; // base-20, as oidc-provider normalises them

function normalizeUserCode(code) {
  return String(code).toUpperCase().replace(userCodeChars, '');
}

async function isPending(entry) {
  const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(entry.userCode));
  return Boolean(code && !code.accountId && !code.error && !code.inFlight);
}

async function settleDeviceCode(entry, account, deny) {
  const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(entry.userCode), { ignoreExpiration: true });
  if (!code) return { error: 'not_found' };
  if (code.isExpired) return { error: 'expired' };
  if (code.accountId || code.error || code.inFlight) return { error: 'already_used' };
  if (deny) {
    Object.assign(code, { error: 'access_denied', errorDescription: 'End-User aborted interaction' });
    await code.save();
    return { user_code: entry.userCode, client_id: code.clientId, denied: true };
  }
  // What oidc-provider's own consent and device resume steps would record.
  const scope = (code.params.scope ?? '').split(' ').filter(Boolean);
  const grant = new provider.Grant({ accountId: account, clientId: code.clientId });
  if (scope.length) grant.addOIDCScope(scope.join(' '));
  const grantId = await grant.save();
  Object.assign(code, {
    accountId: account,
    authTime: Math.floor(Date.now() / 1000),
    amr: ['test'],
    grantId,
    scope: scope.join(' ') || undefined,
  });
  await code.save();
  return {
    user_code: entry.userCode, client_id: code.clientId, scope: scope.join(' '), account,
  };
}

// A browser for oidc-provider's own pages: a cookie jar, one request at a time without
// following redirects, and the form of a page.
function browser() {
  const jar = new Map();
  const trail = [];
  async function request(url, form) {
    const init = { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } };
    if (form) {
      init.method = 'POST';
      init.body = new URLSearchParams(form);
      init.headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, init);
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      if (/expires=Thu, 01 Jan 1970/i.test(c) || i === pair.length - 1) jar.delete(pair.slice(0, i));
      else jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    trail.push(`${init.method ?? 'GET'} ${new URL(url).pathname} ${res.status}`);
    const location = res.status >= 300 && res.status < 400 ? new URL(res.headers.get('location'), url).href : undefined;
    return { url, status: res.status, location, html: location ? '' : await res.text() };
  }
  return { request, trail };
}

function formOf(page) {
  const m = page.html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
  if (!m) return undefined;
  const fields = {};
  for (const [input] of m[2].matchAll(/<input[^>]*>/gi)) {
    const name = input.match(/name="([^"]*)"/)?.[1];
    if (name) fields[name] = input.match(/value="([^"]*)"/)?.[1] ?? '';
  }
  return { action: new URL(m[1].replace(/&amp;/g, '&'), page.url).href, fields };
}

function pageText(html) {
  return html.replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, ' ').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
}

// Walks oidc-provider's pages from `url` as a person signing in as `account` would: follows
// redirects on this server, fills the development login form, confirms consent, and stops at
// the first redirect that leaves this server (a client's redirect URI), or at a page without a
// form. The pages themselves are oidc-provider's; nothing is reached into.
async function walkPages(url, account, form, b = browser()) {
  let next = url;
  let fields = form;
  for (let step = 0; step < 30; step += 1) {
    // eslint-disable-next-line no-await-in-loop
    const page = await b.request(next, fields);
    fields = undefined;
    if (page.location) {
      if (!page.location.startsWith(`${issuer}/`)) return { location: page.location, trail: b.trail };
      next = page.location;
      continue;
    }
    const f = formOf(page);
    if (!f) return { page, trail: b.trail };
    if ('login' in f.fields) Object.assign(f.fields, { login: account, password: 'test' });
    next = f.action;
    fields = f.fields;
  }
  return { error: 'too many steps', trail: b.trail };
}

// The same device approval through oidc-provider's own pages, as a browser would go: the
// user-code form at /device, its confirmation, the development login page (any login name) and
// the consent page, with the cookies they set. Slower than settleDeviceCode but with nothing
// reached into.
async function approveViaPages(userCode, account) {
  const b = browser();
  const start = await b.request(`${issuer}/device`);
  const form = formOf(start);
  const walked = await walkPages(form.action, account, { ...form.fields, user_code: userCode }, b);
  const html = walked.page?.html ?? '';
  const ok = walked.page?.status === 200 && html.includes('Sign-in Success');
  return { ok, trail: walked.trail, text: pageText(html) };
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  const type = req.headers['content-type'] ?? '';
  // Form bodies work too; curl -d sends JSON as a form, so a body that looks like JSON is JSON.
  if (type.startsWith('application/x-www-form-urlencoded') && !text.trimStart().startsWith('{')) return Object.fromEntries(new URLSearchParams(text));
  return JSON.parse(text);
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

async function testHook(req, res, path) {
  if (req.method === 'GET' && path === '/test/device/pending') {
    const now = Date.now();
    const pending = [];
    for (const entry of deviceCodes.values()) {
      if (entry.expiresAt <= now) {
        deviceCodes.delete(entry.userCode);
        continue;
      }
      // eslint-disable-next-line no-await-in-loop
      if (await isPending(entry)) {
        pending.push({
          user_code: entry.userCode, client_id: entry.clientId, scope: entry.scope, expires_at: new Date(entry.expiresAt).toISOString(),
        });
      }
    }
    return sendJson(res, 200, { pending });
  }
  if (req.method === 'POST' && path === '/test/authorize') {
    let body;
    try {
      body = await readJson(req);
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_request', error_description: `body: ${err.message}` });
    }
    if (typeof body.url !== 'string' || !body.url.startsWith(`${issuer}/`)) return sendJson(res, 400, { error: 'invalid_request', error_description: `url must be an authorization URL of ${issuer}` });
    const walked = await walkPages(body.url, body.account ?? 'test-user');
    if (!walked.location) return sendJson(res, 409, { error: 'no_redirect', trail: walked.trail, page: pageText(walked.page?.html ?? '') });
    log(`test hook: signed in ${body.account ?? 'test-user'}; redirecting to ${new URL(walked.location).origin}`);
    return sendJson(res, 200, { location: walked.location, trail: walked.trail });
  }
  if (req.method === 'POST' && (path === '/test/device/approve' || path === '/test/device/deny')) {
    let body;
    try {
      body = await readJson(req);
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_request', error_description: `body: ${err.message}` });
    }
    const deny = path.endsWith('/deny');
    const account = body.account ?? 'test-user';
    if (!deny && (typeof account !== 'string' || !account)) return sendJson(res, 400, { error: 'invalid_request', error_description: 'account must be a non-empty string' });
    let targets;
    if (body.user_code) {
      const wanted = normalizeUserCode(body.user_code);
      targets = [[...deviceCodes.values()].find((e) => normalizeUserCode(e.userCode) === wanted) ?? { userCode: body.user_code }];
    } else if (body.client_id) {
      targets = [];
      for (const entry of deviceCodes.values()) {
        // eslint-disable-next-line no-await-in-loop
        if (entry.clientId === body.client_id && await isPending(entry)) targets.push(entry);
      }
    } else {
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'give user_code or client_id' });
    }
    const viaPages = !deny && ['pages', 'browser'].includes(body.via);
    const done = [];
    const errs = [];
    for (const entry of targets) {
      let result;
      if (viaPages) {
        // eslint-disable-next-line no-await-in-loop
        const r = await approveViaPages(entry.userCode, account);
        result = r.ok
          ? { user_code: entry.userCode, client_id: entry.clientId, scope: entry.scope, account, via: 'pages', trail: r.trail }
          : { error: 'pages_failed', page: r.text, trail: r.trail };
      } else {
        // eslint-disable-next-line no-await-in-loop
        result = await settleDeviceCode(entry, account, deny);
      }
      if (result.error) errs.push({ user_code: entry.userCode, ...result });
      else done.push(result);
    }
    if (done.length === 0) {
      const status = errs.some((e) => e.error !== 'not_found') ? 409 : 404;
      return sendJson(res, status, { error: errs[0]?.error ?? 'not_found', error_description: 'no pending device code matched', details: errs });
    }
    for (const d of done) log(`test hook: ${deny ? 'denied' : `approved for ${account}`} user_code ${d.user_code}`);
    return sendJson(res, 200, deny ? { denied: done } : { approved: done });
  }
  return sendJson(res, 404, { error: 'not_found' });
}

// The paths real providers give these endpoints, so that a connection of each kind can name
// this server as its own: each leads to the standard endpoint. GitHub's token endpoint also
// keeps GitHub's habit of answering errors with HTTP 200.
const frontDoors = [
  { path: /^\/oauth\/token$/, to: '/token', who: 'GitLab, JetBrains Space' },
  { path: /^\/login\/oauth\/access_token$/, to: '/token', who: 'GitHub', errorsAs200: true },
  { path: /^\/site\/oauth2\/access_token$/, to: '/token', who: 'Bitbucket Cloud' },
  { path: /^\/rest\/oauth2\/latest\/token$/, to: '/token', who: 'Bitbucket Data Center' },
  { path: /^\/[A-Za-z0-9.-]+\/oauth2\/v2\.0\/token$/, to: '/token', who: 'Microsoft Entra ID' },
  { path: /^\/oauth\/userinfo$/, to: '/me', who: 'GitLab' },
  { path: /^\/oauth\/authorize$/, to: '/auth', who: 'GitLab' },
  { path: /^\/login\/oauth\/authorize$/, to: '/auth', who: 'GitHub' },
  { path: /^\/site\/oauth2\/authorize$/, to: '/auth', who: 'Bitbucket Cloud' },
  { path: /^\/rest\/oauth2\/latest\/authorize$/, to: '/auth', who: 'Bitbucket Data Center' },
  { path: /^\/oauth\/auth$/, to: '/auth', who: 'JetBrains Space' },
  { path: /^\/[A-Za-z0-9.-]+\/oauth2\/v2\.0\/authorize$/, to: '/auth', who: 'Microsoft Entra ID' },
  { path: /^\/oauth\/authorize_device$/, to: '/device/auth', who: 'GitLab' },
  { path: /^\/login\/device\/code$/, to: '/device/auth', who: 'GitHub', errorsAs200: true },
  { path: /^\/device\/code$/, to: '/device/auth', who: 'Google' },
  { path: /^\/[A-Za-z0-9.-]+\/oauth2\/v2\.0\/devicecode$/, to: '/device/auth', who: 'Microsoft Entra ID' },
];

// Token requests answered since start, by grant type and outcome, for GET /test/stats.
const stats = {};
function count(ctx, outcome) {
  const grant = ctx.oidc?.params?.grant_type ?? 'unknown';
  stats[grant] ??= { ok: 0, error: 0 };
  stats[grant][outcome] += 1;
}
provider.on('grant.success', (ctx) => count(ctx, 'ok'));
provider.on('grant.error', (ctx) => count(ctx, 'error'));

const callback = provider.callback();
server.on('request', (req, res) => {
  let path = (req.url ?? '/').split('?')[0];
  // RFC 8414 metadata: the same document as OpenID discovery.
  if (path === '/.well-known/oauth-authorization-server') req.url = '/.well-known/openid-configuration';
  const door = frontDoors.find((d) => d.path.test(path));
  if (door) {
    req.url = door.to + (req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '');
    path = door.to;
    if (door.errorsAs200) {
      const writeHead = res.writeHead;
      res.writeHead = function writeHead200(status, ...rest) {
        return writeHead.call(this, status >= 400 && status < 500 ? 200 : status, ...rest);
      };
    }
  }
  if (testHooks && path === '/test/stats' && req.method === 'GET') {
    sendJson(res, 200, { token_requests: stats });
    return;
  }
  if (testHooks && path.startsWith('/test/')) {
    testHook(req, res, path).catch((err) => {
      log(`test hook error: ${err.stack ?? err}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err.message ?? err) });
    });
    return;
  }
  callback(req, res);
});

function shutdown(signal) {
  log(`${signal}: stopping`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

log(`issuer ${issuer}; clients ${clients.map((c) => c.client_id).join(', ')}; access token ttl ${accessTokenTTL} s; refresh token rotation ${rotateRefreshTokens ? 'on' : 'off'}; test hooks ${testHooks ? 'on' : 'off'}`);
process.stdout.write(`oauth-server listening at ${issuer}\n`);
