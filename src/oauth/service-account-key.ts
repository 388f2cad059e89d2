import { createPrivateKey, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { isLoopbackHost } from '../config/hosts.js';
import { MailgateError } from '../errors.js';

/**
 * A Google service-account JSON key (Google Cloud › IAM › Service accounts ›
 * Keys › Add key › JSON), read once and checked field by field. The private
 * key becomes a KeyObject held in a private field: it is not an own property,
 * so JSON.stringify, util.inspect, structuredClone and object spread never see
 * it (a log line or an error `details` that includes the key shows
 * `[ServiceAccountKey client@…]`, nothing more).
 *
 * Field names follow the file:
 * https://cloud.google.com/iam/docs/keys-create-delete#creating (the JSON
 * has type, project_id, private_key_id, private_key, client_email, client_id,
 * auth_uri, token_uri, …).
 */

/** A key file larger than this is not a service-account key (they are ~2.3 KB). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface KeyProblem {
  /** The JSON field at fault, or null when the file as a whole is wrong. */
  field: string | null;
  message: string;
}

/** Every problem with one key file, in one error; `source` names the file. */
export class ServiceAccountKeyError extends MailgateError {
  readonly problems: KeyProblem[];
  constructor(source: string, problems: KeyProblem[]) {
    super('CONFIG_INVALID', `${source}: ${problems.map((p) => p.message).join('; ')}`, {
      details: { problems: problems.map((p) => ({ ...p })) },
    });
    this.name = 'ServiceAccountKeyError';
    this.problems = problems;
  }
}

export class ServiceAccountKey {
  readonly type = 'service_account' as const;
  readonly clientEmail: string;
  /** The numeric OAuth client id: what the Workspace admin pastes into domain-wide delegation. */
  readonly clientId: string;
  /** The `kid` of every assertion signed with this key. */
  readonly privateKeyId: string;
  /** Where assertions are exchanged, and their `aud`. */
  readonly tokenUri: string;
  readonly projectId: string | null;
  readonly #privateKey: KeyObject;

  constructor(fields: { clientEmail: string; clientId: string; privateKeyId: string; tokenUri: string; projectId: string | null; privateKey: KeyObject }) {
    this.clientEmail = fields.clientEmail;
    this.clientId = fields.clientId;
    this.privateKeyId = fields.privateKeyId;
    this.tokenUri = fields.tokenUri;
    this.projectId = fields.projectId;
    this.#privateKey = fields.privateKey;
    Object.freeze(this);
  }

  /** The RSA private key; only the signer reads it. */
  get privateKey(): KeyObject {
    return this.#privateKey;
  }

  /** What a log or an API answer may show: everything but the key. */
  toJSON(): Record<string, string | null> {
    return { type: this.type, clientEmail: this.clientEmail, clientId: this.clientId, privateKeyId: this.privateKeyId, tokenUri: this.tokenUri, projectId: this.projectId };
  }

  [inspect.custom](): string {
    return `[ServiceAccountKey ${this.clientEmail}]`;
  }

  toString(): string {
    return `[ServiceAccountKey ${this.clientEmail}]`;
  }
}

/**
 * Parses and validates a key file's content. `source` is how the problems
 * name the file (the path as the admin wrote it); the config loader adds the
 * `file:line:col` of its `serviceAccountKeyFile` key. Throws a
 * ServiceAccountKeyError listing every problem found, each naming its field.
 * Messages never quote the file's content (it is a secret).
 */
export function parseServiceAccountKey(content: string | Buffer, source = 'service-account key'): ServiceAccountKey {
  const fail = (problems: KeyProblem[]): never => {
    throw new ServiceAccountKeyError(source, problems);
  };
  const size = typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  if (size > MAX_KEY_FILE_BYTES) fail([{ field: null, message: `is ${size} bytes; a service-account key file is a few KB of JSON (limit ${MAX_KEY_FILE_BYTES})` }]);
  const text = (typeof content === 'string' ? content : content.toString('utf8')).replace(/^\uFEFF/, '');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input: never shown, the input is a secret.
    return fail([{ field: null, message: 'is not JSON; expected the JSON key downloaded from Google Cloud (IAM › Service accounts › Keys › Add key › JSON)' }]);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return fail([{ field: null, message: 'is not a JSON object; expected a Google service-account key' }]);
  }
  const o = json as Record<string, unknown>;
  if (o.installed !== undefined || o.web !== undefined) {
    return fail([{ field: null, message: 'is an OAuth client file (client_secret_….json), not a service-account key; create a key for the service account instead (IAM › Service accounts › Keys)' }]);
  }

  const problems: KeyProblem[] = [];
  const str = (field: string): string | null => {
    const v = o[field];
    if (v === undefined || v === null || v === '') {
      problems.push({ field, message: `${field} is missing` });
      return null;
    }
    if (typeof v !== 'string') {
      problems.push({ field, message: `${field} must be a string, not ${Array.isArray(v) ? 'an array' : typeof v}` });
      return null;
    }
    return v;
  };

  const type = str('type');
  if (type !== null && type !== 'service_account') {
    const what = TYPE_NAMES[type];
    problems.push({ field: 'type', message: `type is "${type}"${what ? ` (${what})` : ''}, not "service_account"` });
  }
  const clientEmail = str('client_email');
  if (clientEmail !== null && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(clientEmail)) {
    problems.push({ field: 'client_email', message: 'client_email is not an email address (expected name@project.iam.gserviceaccount.com)' });
  }
  const clientId = str('client_id');
  if (clientId !== null && !/^\d+$/.test(clientId)) {
    problems.push({ field: 'client_id', message: 'client_id must be the numeric client id Google put in the key file' });
  }
  const privateKeyId = str('private_key_id');
  if (privateKeyId !== null && !/^[A-Za-z0-9_-]+$/.test(privateKeyId)) {
    problems.push({ field: 'private_key_id', message: 'private_key_id must be the key id Google put in the key file (letters and digits)' });
  }
  const tokenUri = str('token_uri');
  if (tokenUri !== null) {
    const problem = tokenUriProblem(tokenUri);
    if (problem) problems.push({ field: 'token_uri', message: problem });
  }
  const pem = str('private_key');
  const privateKey = pem === null ? null : readPrivateKey(pem, problems);
  const projectId = typeof o.project_id === 'string' && o.project_id !== '' ? o.project_id : null;

  if (problems.length > 0 || !clientEmail || !clientId || !privateKeyId || !tokenUri || !privateKey) return fail(problems);
  return new ServiceAccountKey({ clientEmail, clientId, privateKeyId, tokenUri, projectId, privateKey });
}

/** Other `type`s Google puts in credential files, named so the admin sees which file they picked. */
const TYPE_NAMES: Record<string, string> = {
  authorized_user: "a user's credentials from gcloud auth application-default login",
  external_account: 'a workload identity federation configuration',
  impersonated_service_account: 'an impersonation configuration',
  external_account_authorized_user: 'a workforce identity federation user',
};

function tokenUriProblem(value: string): string | null {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'token_uri is not a URL (Google keys have https://oauth2.googleapis.com/token)';
  }
  // The assertion is a bearer credential for an hour: it never travels in clear,
  // except to a token server on this machine (tests, a local proxy).
  if (u.protocol === 'https:') return null;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return null;
  return `token_uri must be an https URL, not ${u.protocol}//`;
}

function readPrivateKey(pem: string, problems: KeyProblem[]): KeyObject | null {
  if (!pem.includes('\n') && pem.includes('\\n')) {
    problems.push({ field: 'private_key', message: 'private_key has the two characters \\n where line breaks belong (the key was escaped twice); use the file as Google issued it' });
    return null;
  }
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) {
    problems.push({ field: 'private_key', message: 'private_key is not a PEM private key (it should start with -----BEGIN PRIVATE KEY-----)' });
    return null;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    // OpenSSL's reason ("unsupported", "bad decrypt") names no key material.
    const reason = err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:/i, '') : String(err);
    problems.push({ field: 'private_key', message: `private_key does not parse as a private key (${reason})` });
    return null;
  }
  if (key.asymmetricKeyType !== 'rsa') {
    problems.push({ field: 'private_key', message: `private_key is a ${key.asymmetricKeyType ?? 'unknown'} key; Google signs service-account assertions with RSA (RS256)` });
    return null;
  }
  return key;
}
