// A real RFC 9449 / RFC 8705 authorization server for authgate's tests:
// panva's oidc-provider on a loopback port, issuing JWT access tokens for
// one resource indicator by client_credentials, bound to a DPoP key
// (client dpop-client) or to a client certificate (client mtls-client; the
// certificate arrives in an RFC 9440 Client-Cert header, as from a
// TLS-terminating proxy).
//
// Usage: node server.mjs RESOURCE
// Prints one JSON line once it listens: {"issuer", "token_endpoint",
// "jwks_uri"}. Stops on SIGTERM or when its standard input closes.
import { createServer } from 'node:http';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import Provider from 'oidc-provider';

const resource = process.argv[2];
// A second resource whose access tokens are opaque, for introspection.
const opaqueResource = 'https://opaque.authgate.test/';
if (!resource) {
  console.error('usage: node server.mjs RESOURCE');
  process.exit(2);
}

// The RFC 9440 header, strictly: one sf-binary item of standard base64.
function clientCert(ctx) {
  const v = ctx.get('client-cert').trim();
  const m = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(v);
  return m ? new X509Certificate(Buffer.from(m[1], 'base64')) : undefined;
}

const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...signingKey, kid: 'fixture-es256', use: 'sig', alg: 'ES256' }] },
    clients: [
      {
        client_id: 'dpop-client',
        client_secret: 'dpop-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
        redirect_uris: [],
        dpop_bound_access_tokens: true,
      },
      {
        client_id: 'mtls-client',
        client_secret: 'mtls-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
        redirect_uris: [],
        tls_client_certificate_bound_access_tokens: true,
      },
    ],
    scopes: ['read'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      dPoP: { enabled: true },
      mTLS: { enabled: true, certificateBoundAccessTokens: true, getCertificate: clientCert },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          // The opaque resource's tokens are stored and introspectable
          // (oidc-provider introspects no structured token).
          if (indicator === opaqueResource) return { scope: 'read', audience: opaqueResource, accessTokenFormat: 'opaque', accessTokenTTL: 300 };
          if (indicator !== resource) throw new Provider.errors.InvalidTarget();
          return { scope: 'read', audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA', 'Ed25519'] },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
  }));
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
