import { createHash, createPrivateKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { MailgateError } from '../errors.js';
import { signJwt, type JwtAlg } from './jwt-bearer.js';

/**
 * Microsoft Entra certificate credentials: instead of a client secret the
 * app proves itself with a JWT signed by the certificate's private key
 * (RFC 7523 §2.2 client authentication, OpenID Connect `private_key_jwt`).
 *
 * Format as Microsoft documents it,
 * https://learn.microsoft.com/entra/identity-platform/certificate-credentials :
 * header `alg` PS256 ("Use PSS padding"), `typ` JWT, `x5t#S256` = base64url
 * SHA-256 thumbprint of the certificate's DER; claims `aud` = the token
 * endpoint, `iss` = `sub` = the application (client) id, `jti` a GUID,
 * `nbf`/`iat` now, `exp` "5-10 minutes after nbf at most". The earlier
 * revision of that page (still what some tenants and sovereign clouds were
 * set up against) says RS256 with `x5t` = base64url SHA-1 thumbprint, so
 * both thumbprints go in every header and RS256 stays selectable.
 */

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Microsoft: keep `exp` within 5-10 minutes of `nbf`. */
export const CLIENT_ASSERTION_LIFETIME_S = 5 * 60;

export class CertificateCredentialError extends MailgateError {
  readonly field: 'certificate' | 'privateKey';
  constructor(field: 'certificate' | 'privateKey', message: string) {
    super('CONFIG_INVALID', message, { details: { field } });
    this.name = 'CertificateCredentialError';
    this.field = field;
  }
}

/** A certificate and its private key, checked to belong together. The key is not an own property. */
export class CertificateCredential {
  /** base64url SHA-256 of the DER certificate (`x5t#S256`). */
  readonly thumbprintSha256: string;
  /** base64url SHA-1 of the DER certificate (`x5t`). */
  readonly thumbprintSha1: string;
  /** Hex SHA-1 thumbprint, as the Entra portal shows it under Certificates & secrets. */
  readonly thumbprintHex: string;
  readonly subject: string;
  readonly notBefore: Date;
  /** The credential-health date: Entra refuses the assertion once the certificate has expired. */
  readonly notAfter: Date;
  readonly #key: KeyObject;

  constructor(cert: X509Certificate, key: KeyObject) {
    const der = cert.raw;
    this.thumbprintSha256 = createHash('sha256').update(der).digest('base64url');
    this.thumbprintSha1 = createHash('sha1').update(der).digest('base64url');
    this.thumbprintHex = createHash('sha1').update(der).digest('hex').toUpperCase();
    this.subject = cert.subject;
    this.notBefore = new Date(cert.validFrom);
    this.notAfter = new Date(cert.validTo);
    this.#key = key;
    Object.freeze(this);
  }

  get privateKey(): KeyObject {
    return this.#key;
  }

  toJSON(): Record<string, string> {
    return { thumbprint: this.thumbprintHex, subject: this.subject, notBefore: this.notBefore.toISOString(), notAfter: this.notAfter.toISOString() };
  }

  [inspect.custom](): string {
    return `[CertificateCredential ${this.thumbprintHex}]`;
  }

  toString(): string {
    return `[CertificateCredential ${this.thumbprintHex}]`;
  }
}

/**
 * Reads a PEM certificate (the first one, if a chain follows) and its PEM
 * private key (PKCS#8 or PKCS#1, optionally encrypted with `passphrase`).
 * Messages name the part at fault and never quote either file.
 */
export function loadCertificateCredential(input: { certificatePem: string | Buffer; privateKeyPem: string | Buffer; passphrase?: string }): CertificateCredential {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(input.certificatePem);
  } catch {
    throw new CertificateCredentialError('certificate', 'the certificate is not a PEM X.509 certificate (-----BEGIN CERTIFICATE-----)');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: input.privateKeyPem, format: 'pem', ...(input.passphrase !== undefined ? { passphrase: input.passphrase } : {}) });
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:/i, '') : String(err);
    throw new CertificateCredentialError('privateKey', `the private key does not parse (${reason}); expected a PEM private key${input.passphrase === undefined ? ' (an encrypted key needs its passphrase)' : ''}`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new CertificateCredentialError('privateKey', `the private key is ${key.asymmetricKeyType ?? 'of an unknown type'}; Entra certificate credentials are RSA (PS256/RS256)`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new CertificateCredentialError('privateKey', `the private key does not belong to the certificate (thumbprint ${new CertificateCredential(cert, key).thumbprintHex})`);
  }
  return new CertificateCredential(cert, key);
}

export interface ClientAssertionOptions {
  /** The application (client) id: `iss` and `sub`. */
  clientId: string;
  /** The exact token endpoint the assertion is sent to: `aud`. */
  tokenEndpoint: string;
  now?: number;
  lifetimeSeconds?: number;
  alg?: JwtAlg;
  /** Defaults to a random UUID; tests pass a fixed one. */
  jti?: string;
}

export function buildClientAssertion(cred: CertificateCredential, opts: ClientAssertionOptions): string {
  const lifetime = opts.lifetimeSeconds ?? CLIENT_ASSERTION_LIFETIME_S;
  if (!(lifetime > 0 && lifetime <= 10 * 60)) throw new RangeError('a client assertion should be valid 1 s to 10 min');
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  return signJwt(
    { typ: 'JWT', 'x5t#S256': cred.thumbprintSha256, x5t: cred.thumbprintSha1 },
    { aud: opts.tokenEndpoint, iss: opts.clientId, sub: opts.clientId, jti: opts.jti ?? randomUUID(), nbf: now, iat: now, exp: now + lifetime },
    cred.privateKey,
    opts.alg ?? 'PS256',
  );
}

/**
 * The client-authentication form fields that replace `client_secret` in any
 * token request (client credentials, refresh, code exchange): merge them
 * into the body. A fresh assertion (new `jti`) for every request.
 */
export function clientAssertionParams(cred: CertificateCredential, opts: ClientAssertionOptions): Record<string, string> {
  return { client_id: opts.clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: buildClientAssertion(cred, opts) };
}
