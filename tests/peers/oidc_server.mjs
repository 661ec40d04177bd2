// Serve the real `oidc-provider` (npm) on a loopback port for Airlock's
// end-to-end tests.
//
// Prints the chosen port on the first line of stdout, then serves until its
// standard input closes, which happens when the test process that started it
// exits for any reason.
//
// Settings come as one JSON object in the first argument:
//   client_id, client_secret   the one confidential client (client_secret_basic)
//   access_ttl                 access token lifetime in seconds (default 3600)
//   rotate                     rotate refresh tokens on every use (default true)
//   reuse_grace                seconds a rotated refresh token may still be
//                              used once more, as Auth0's "reuse interval" and
//                              Okta's "grace period" allow (default 0: reuse
//                              revokes the whole grant, oidc-provider's rule)
//   account                    the account every login signs in as
//   refresh_delay_ms           delay before the token endpoint looks up a
//                              refresh token (widens refresh races)
//
// Test-only additions, none of which changes the OAuth endpoints:
//   the login and consent prompts are answered at once for `account` with
//   every scope requested (the consent step automated over HTTP), and
//   GET /__stats reports the token endpoint's successes and errors, and
//   how often a rotated refresh token was used again within the grace.

const settings = JSON.parse(process.argv[2] ?? '{}');
const moduleUrl = new URL('../../.peers/node/node_modules/oidc-provider/lib/index.js', import.meta.url);
const { default: Provider } = await import(moduleUrl);
const http = await import('node:http');
const { AsyncLocalStorage } = await import('node:async_hooks');
const requestPath = new AsyncLocalStorage();
const refreshDelay = settings.refresh_delay_ms ?? 0;

const reuseGrace = settings.reuse_grace ?? 0;
const stats = { grants: {}, errors: {}, revocations: 0, grace_reuses: 0 };
const bump = (table, key) => { table[key] = (table[key] ?? 0) + 1; };

// oidc-provider's storage, kept in memory. The only change from a plain map:
// a consumed token reads as unconsumed for `reuse_grace` seconds.
const stores = new Map();
class GraceAdapter {
  constructor(name) {
    if (!stores.has(name)) stores.set(name, new Map());
    this.map = stores.get(name);
    this.name = name;
  }
  now() { return Math.floor(Date.now() / 1000); }
  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? this.now() + expiresIn : undefined;
    this.map.set(id, { payload: { ...payload }, expiresAt });
    if (payload.grantId) {
      const key = `grant:${payload.grantId}`;
      const ids = grants.get(key) ?? new Set();
      ids.add(`${this.name}:${id}`);
      grants.set(key, ids);
    }
  }
  async find(id) {
    if (refreshDelay > 0 && this.name === 'RefreshToken' && requestPath.getStore() === '/token') {
      await new Promise((resolve) => setTimeout(resolve, refreshDelay));
    }
    const entry = this.map.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.now()) {
      this.map.delete(id);
      return undefined;
    }
    const payload = { ...entry.payload };
    if (payload.consumed && this.now() - payload.consumed < reuseGrace) {
      delete payload.consumed;
      stats.grace_reuses += 1;
    }
    return payload;
  }
  async findByUid(uid) {
    for (const [id, entry] of this.map) {
      if (entry.payload.uid === uid) return this.find(id);
    }
    return undefined;
  }
  async findByUserCode(userCode) {
    for (const [id, entry] of this.map) {
      if (entry.payload.userCode === userCode) return this.find(id);
    }
    return undefined;
  }
  async consume(id) {
    const entry = this.map.get(id);
    if (entry) entry.payload.consumed = this.now();
  }
  async destroy(id) { this.map.delete(id); }
  async revokeByGrantId(grantId) {
    const key = `grant:${grantId}`;
    for (const ref of grants.get(key) ?? []) {
      const at = ref.indexOf(':');
      stores.get(ref.slice(0, at))?.delete(ref.slice(at + 1));
    }
    grants.delete(key);
  }
}
const grants = new Map();

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  adapter: GraceAdapter,
  clients: [{
    client_id: settings.client_id ?? 'airlock-test',
    client_secret: settings.client_secret ?? 'airlock-test-secret-0123456789',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/consent/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  cookies: { keys: ['airlock-test-cookie-key-0123456789'] },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  ttl: {
    AccessToken: settings.access_ttl ?? 3600,
    AuthorizationCode: 60,
    Grant: 86400,
    Interaction: 600,
    RefreshToken: 86400,
    Session: 86400,
  },
  rotateRefreshToken: settings.rotate ?? true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: id, email: `${id}@example.test` }),
  }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

provider.on('grant.success', (ctx) => bump(stats.grants, ctx.oidc.params.grant_type));
provider.on('grant.error', (ctx, err) => bump(stats.errors, `${err.error}: ${err.error_description}`));
provider.on('grant.revoked', () => { stats.revocations += 1; });

provider.use((ctx, next) => requestPath.run(ctx.path, next));
provider.use(async (ctx, next) => {
  if (ctx.path === '/__stats') {
    ctx.body = stats;
    return;
  }
  const interaction = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (interaction && ctx.method === 'GET') {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === 'login') {
      result = { login: { accountId: settings.account ?? 'test-user' } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(resource, scopes.join(' '));
      }
      result = { consent: { grantId: await grant.save() } };
    }
    const location = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(location);
    return;
  }
  await next();
});

server.on('request', provider.callback());
process.stdout.write(`${port}\n`);
// The test reads only the port; it may close the pipe after that, so later
// output goes to stderr and a closed stdout is not an error.
process.stdout.on('error', () => {});
console.log = console.error;
console.info = console.error;

process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
