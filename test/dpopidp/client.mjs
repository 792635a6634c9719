// A real RFC 9449 client for authgate's tests: oauth4webapi's own
// functions get a DPoP-bound access token from the fixture's authorization
// server (client_credentials, resource indicator) and make DPoP requests
// to a resource URL. It prints what happened as one JSON line.
//
// Usage: node client.mjs ISSUER RESOURCE URL [options]
//   --alg ALG            the DPoP key's algorithm (ES256 by default)
//   --tokens N           get N tokens with the same key (1)
//   --method M           a request with method M (repeatable; default GET GET)
//   --bearer             then one request with the token as a Bearer token
//   --foreign-token TOK  use TOK (bound to another key) with this client's key
//   --resource R         get the tokens for resource R instead
//   --export-key         also print the DPoP private key (JWK), so that a test
//                        can sign altered proofs with the key the token is bound to
//
// Output: {"jkt", "tokens": [...], "requests": [{"token", "method",
// "status", "nonce_retry", "error"}], "private_jwk"}.
import * as oauth from 'oauth4webapi';

const [issuerArg, resource, target, ...rest] = process.argv.slice(2);
if (!issuerArg || !resource || !target) {
  console.error('usage: node client.mjs ISSUER RESOURCE URL [options]');
  process.exit(2);
}
const opts = { alg: 'ES256', tokens: 1, methods: [], bearer: false, foreign: undefined, exportKey: false };
for (let i = 0; i < rest.length; i++) {
  switch (rest[i]) {
    case '--alg': opts.alg = rest[++i]; break;
    case '--tokens': opts.tokens = Number(rest[++i]); break;
    case '--method': opts.methods.push(rest[++i]); break;
    case '--bearer': opts.bearer = true; break;
    case '--foreign-token': opts.foreign = rest[++i]; break;
    case '--export-key': opts.exportKey = true; break;
    case '--resource': opts.resource = rest[++i]; break;
    default: console.error(`unknown option ${rest[i]}`); process.exit(2);
  }
}
if (opts.methods.length === 0) opts.methods = ['GET', 'GET'];

// The fixture and the resource run on plain http on loopback.
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(issuerArg);
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
const client = { client_id: 'dpop-client' };
const clientAuth = oauth.ClientSecretBasic('dpop-secret');
const keyPair = await oauth.generateKeyPair(opts.alg, { extractable: true });
const DPoP = oauth.DPoP(client, keyPair);

const tokens = [];
if (opts.foreign) {
  tokens.push(opts.foreign);
} else {
  for (let i = 0; i < opts.tokens; i++) {
    const params = new URLSearchParams({ resource: opts.resource ?? resource, scope: 'read' });
    const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, params, { DPoP, ...insecure });
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    if (result.token_type !== 'dpop') throw new Error(`token_type ${result.token_type}, want dpop`);
    tokens.push(result.access_token);
  }
}

// One request as the library makes it; a use_dpop_nonce challenge is
// answered once, as RFC 9449 section 9 says (the handle kept the nonce).
async function request(token, method, dpop) {
  const url = new URL(target);
  const options = dpop ? { DPoP, ...insecure } : insecure;
  const out = { token: tokens.indexOf(token), method, dpop, nonce_retry: false };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const response = await oauth.protectedResourceRequest(token, method, url, new Headers(), null, options);
      out.status = response.status;
      return out;
    } catch (err) {
      if (dpop && attempt === 0 && oauth.isDPoPNonceError(err)) {
        out.nonce_retry = true;
        continue;
      }
      if (err instanceof oauth.WWWAuthenticateChallengeError) {
        out.status = err.response.status;
        out.error = err.cause.map((c) => `${c.scheme}:${c.parameters.error ?? ''}`).join(' ');
        return out;
      }
      throw err;
    }
  }
  return out;
}

const requests = [];
for (const token of tokens) {
  for (const method of opts.methods) requests.push(await request(token, method, true));
}
if (opts.bearer) requests.push(await request(tokens[0], 'GET', false));
const out = { jkt: await DPoP.calculateThumbprint(), tokens, requests };
if (opts.exportKey) out.private_jwk = await crypto.subtle.exportKey('jwk', keyPair.privateKey);
console.log(JSON.stringify(out));
