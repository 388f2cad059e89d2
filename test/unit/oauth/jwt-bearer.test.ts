import { constants, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64url, buildJwtBearerAssertion, JWT_BEARER_GRANT_TYPE, jwtBearerTokenRequest, signJwt } from '../../../src/oauth/jwt-bearer.js';
import { parseServiceAccountKey } from '../../../src/oauth/service-account-key.js';
import { makeServiceAccountKey } from '../../harness/oauth-process.js';

const made = makeServiceAccountKey({ tokenUri: 'https://oauth2.googleapis.com/token', privateKeyId: 'abc123def456' });
const key = parseServiceAccountKey(made.json);
const publicKey = createPublicKey(made.publicKeyPem);
const NOW = Date.UTC(2026, 11, 1, 10, 0, 0, 500);

function decode(jwt: string) {
  const [h, c, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c!, 'base64url').toString()) as Record<string, unknown>,
    input: `${h}.${c}`,
    signature: Buffer.from(s!, 'base64url'),
    raw: [h!, c!, s!],
  };
}

describe('buildJwtBearerAssertion (RFC 7523, Google domain-wide delegation)', () => {
  it('has the header and claims Google documents, signed RS256 with the key', () => {
    const { assertion, issuedAt, expiresAt } = buildJwtBearerAssertion(key, { subject: 'support@example.com', scopes: ['https://mail.google.com/', 'openid'], now: NOW });
    const jwt = decode(assertion);
    expect(jwt.header).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'abc123def456' });
    const iat = Math.floor(NOW / 1000);
    expect(jwt.claims).toEqual({
      iss: made.fields.client_email,
      sub: 'support@example.com',
      scope: 'https://mail.google.com/ openid',
      aud: 'https://oauth2.googleapis.com/token',
      iat,
      exp: iat + 3600,
    });
    expect(issuedAt).toBe(iat * 1000);
    expect(expiresAt).toBe((iat + 3600) * 1000);
    expect(verify('sha256', Buffer.from(jwt.input), publicKey, jwt.signature)).toBe(true);
    // base64url, no padding, no '+' or '/'
    for (const part of jwt.raw) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('is pure: same clock, same assertion (PKCS#1 v1.5 is deterministic)', () => {
    const a = buildJwtBearerAssertion(key, { subject: 'a@example.com', scopes: ['https://mail.google.com/'], now: NOW });
    const b = buildJwtBearerAssertion(key, { subject: 'a@example.com', scopes: ['https://mail.google.com/'], now: NOW });
    expect(a.assertion).toBe(b.assertion);
    const c = buildJwtBearerAssertion(key, { subject: 'b@example.com', scopes: ['https://mail.google.com/'], now: NOW });
    expect(decode(c.assertion).claims.sub).toBe('b@example.com');
  });

  it('never asks for more than an hour, nor for nothing', () => {
    expect(decode(buildJwtBearerAssertion(key, { subject: 'a@x', scopes: ['s'], now: NOW, lifetimeSeconds: 600 }).assertion).claims.exp).toBe(Math.floor(NOW / 1000) + 600);
    expect(() => buildJwtBearerAssertion(key, { subject: 'a@x', scopes: ['s'], lifetimeSeconds: 3601 })).toThrow(RangeError);
    expect(() => buildJwtBearerAssertion(key, { subject: 'a@x', scopes: ['s'], lifetimeSeconds: 0 })).toThrow(RangeError);
    expect(() => buildJwtBearerAssertion(key, { subject: '', scopes: ['s'] })).toThrow(/subject/);
    expect(() => buildJwtBearerAssertion(key, { subject: 'a@x', scopes: [] })).toThrow(/scope/);
  });

  it('builds the token request body', () => {
    const req = jwtBearerTokenRequest(key, { subject: 'support@example.com', scopes: ['https://mail.google.com/'], now: NOW });
    expect(req.url).toBe('https://oauth2.googleapis.com/token');
    expect(Object.keys(req.body)).toEqual(['grant_type', 'assertion']);
    expect(req.body.grant_type).toBe(JWT_BEARER_GRANT_TYPE);
    expect(req.body.grant_type).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    expect(decode(req.body.assertion!).claims.sub).toBe('support@example.com');
    expect(new URLSearchParams(req.body).toString()).toMatch(/^grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey/);
  });
});

describe('signJwt', () => {
  it('signs PS256 with PSS padding and a 32-byte salt', () => {
    const jwt = decode(signJwt({ typ: 'JWT' }, { a: 1 }, key.privateKey, 'PS256'));
    expect(jwt.header.alg).toBe('PS256');
    expect(verify('sha256', Buffer.from(jwt.input), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, jwt.signature)).toBe(true);
    expect(verify('sha256', Buffer.from(jwt.input), publicKey, jwt.signature)).toBe(false);
  });

  it('base64url encodes without padding', () => {
    expect(base64url(Buffer.from([0xfb, 0xff]))).toBe('-_8');
  });
});
