import { constants, createHash, createPublicKey, generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildClientAssertion, CertificateCredentialError, CLIENT_ASSERTION_TYPE, clientAssertionParams, loadCertificateCredential } from '../../../src/oauth/client-assertion.js';
import { makeCertificate } from '../../harness/oauth-process.js';

const pair = makeCertificate('mailgate-unit');
const cred = loadCertificateCredential({ certificatePem: pair.certificatePem, privateKeyPem: pair.privateKeyPem });
const x509 = new X509Certificate(pair.certificatePem);
const TOKEN = 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token';
const CLIENT = '00001111-aaaa-2222-bbbb-3333cccc4444';
const NOW = Date.UTC(2026, 11, 1, 10, 0, 0);

function decode(jwt: string) {
  const [h, c, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c!, 'base64url').toString()) as Record<string, unknown>,
    input: Buffer.from(`${h}.${c}`),
    signature: Buffer.from(s!, 'base64url'),
  };
}

describe('Entra certificate client assertion', () => {
  it('has the header and claims Microsoft documents, PS256 by default', () => {
    const jwt = decode(buildClientAssertion(cred, { clientId: CLIENT, tokenEndpoint: TOKEN, now: NOW, jti: 'fixed-jti' }));
    expect(jwt.header).toEqual({
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': createHash('sha256').update(x509.raw).digest('base64url'),
      x5t: createHash('sha1').update(x509.raw).digest('base64url'),
    });
    const t = NOW / 1000;
    expect(jwt.claims).toEqual({ aud: TOKEN, iss: CLIENT, sub: CLIENT, jti: 'fixed-jti', nbf: t, iat: t, exp: t + 300 });
    const pub = createPublicKey(pair.certificatePem);
    expect(verify('sha256', jwt.input, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, jwt.signature)).toBe(true);
  });

  it('signs RS256 for tenants set up against the older format', () => {
    const jwt = decode(buildClientAssertion(cred, { clientId: CLIENT, tokenEndpoint: TOKEN, alg: 'RS256' }));
    expect(jwt.header.alg).toBe('RS256');
    expect(verify('sha256', jwt.input, createPublicKey(pair.certificatePem), jwt.signature)).toBe(true);
  });

  it('uses a new jti for every assertion and keeps exp within 10 minutes', () => {
    const a = decode(buildClientAssertion(cred, { clientId: CLIENT, tokenEndpoint: TOKEN }));
    const b = decode(buildClientAssertion(cred, { clientId: CLIENT, tokenEndpoint: TOKEN }));
    expect(a.claims.jti).not.toBe(b.claims.jti);
    expect(a.claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(() => buildClientAssertion(cred, { clientId: CLIENT, tokenEndpoint: TOKEN, lifetimeSeconds: 3600 })).toThrow(RangeError);
  });

  it('gives the form fields that replace client_secret', () => {
    const p = clientAssertionParams(cred, { clientId: CLIENT, tokenEndpoint: TOKEN });
    expect(Object.keys(p).sort()).toEqual(['client_assertion', 'client_assertion_type', 'client_id']);
    expect(p.client_assertion_type).toBe(CLIENT_ASSERTION_TYPE);
    expect(p.client_assertion_type).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    expect(p.client_id).toBe(CLIENT);
  });

  it('knows the thumbprint the portal shows and the expiry date', () => {
    expect(cred.thumbprintHex).toBe(x509.fingerprint.replace(/:/g, ''));
    expect(cred.notAfter.getTime()).toBe(new Date(x509.validTo).getTime());
    expect(cred.notAfter.getTime() - Date.now()).toBeGreaterThan(86_400_000);
  });

  it('never shows the key', () => {
    const body = pair.privateKeyPem.split('\n')[1]!;
    for (const v of [JSON.stringify(cred), inspect(cred, { showHidden: true, depth: 5 }), String(cred), JSON.stringify({ ...cred })]) {
      expect(v).not.toContain(body);
      expect(v).not.toMatch(/PRIVATE KEY/);
    }
  });

  it('refuses a wrong pair or a bad file, naming the part', () => {
    const other = makeCertificate('other');
    const wrong = () => loadCertificateCredential({ certificatePem: pair.certificatePem, privateKeyPem: other.privateKeyPem });
    expect(wrong).toThrow(CertificateCredentialError);
    expect(wrong).toThrow(/does not belong to the certificate/);
    expect(() => loadCertificateCredential({ certificatePem: 'nope', privateKeyPem: pair.privateKeyPem })).toThrow(/not a PEM X.509 certificate/);
    const garbage = () => loadCertificateCredential({ certificatePem: pair.certificatePem, privateKeyPem: 'garbage' });
    expect(garbage).toThrow(expect.objectContaining({ field: 'privateKey', message: expect.stringMatching(/does not parse/) }));
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    expect(() => loadCertificateCredential({ certificatePem: pair.certificatePem, privateKeyPem: ec })).toThrow(/Entra certificate credentials are RSA/);
  });
});
