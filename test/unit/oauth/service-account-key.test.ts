import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseServiceAccountKey, ServiceAccountKeyError, type KeyProblem } from '../../../src/oauth/service-account-key.js';
import { makeServiceAccountKey } from '../../harness/oauth-process.js';

const good = makeServiceAccountKey({ tokenUri: 'https://oauth2.googleapis.com/token' });
const withFields = (patch: Record<string, unknown>) => JSON.stringify({ ...good.fields, ...patch });

function problemsOf(content: string): KeyProblem[] {
  try {
    parseServiceAccountKey(content, 'secrets/sa.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceAccountKeyError);
    const e = err as ServiceAccountKeyError;
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message.startsWith('secrets/sa.json: ')).toBe(true);
    // Nothing from the file itself is ever quoted back.
    expect(e.message).not.toContain('PRIVATE KEY-----\n');
    expect(JSON.stringify(e.details)).not.toContain(good.fields.private_key.slice(40, 80));
    return e.problems;
  }
  throw new Error('expected the key to be refused');
}

describe('parseServiceAccountKey', () => {
  it('reads a key Google issued', () => {
    const key = parseServiceAccountKey(good.json, 'sa.json');
    expect(key.clientEmail).toBe(good.fields.client_email);
    expect(key.clientId).toBe(good.fields.client_id);
    expect(key.privateKeyId).toBe(good.fields.private_key_id);
    expect(key.tokenUri).toBe('https://oauth2.googleapis.com/token');
    expect(key.projectId).toBe('mailgate-test');
    expect(key.privateKey.type).toBe('private');
    expect(key.privateKey.asymmetricKeyType).toBe('rsa');
    expect(Object.isFrozen(key)).toBe(true);
  });

  it('accepts a Buffer with a byte-order mark', () => {
    expect(parseServiceAccountKey(Buffer.from(`\uFEFF${good.json}`)).clientEmail).toBe(good.fields.client_email);
  });

  it('never shows the private key: JSON, inspect, spread, String, structuredClone', () => {
    const key = parseServiceAccountKey(good.json);
    const pemBody = good.fields.private_key.split('\n')[1]!;
    const der = key.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64');
    const views = [
      JSON.stringify(key),
      JSON.stringify({ nested: { key } }),
      inspect(key, { depth: 10, showHidden: true }),
      inspect({ key }, { depth: 10 }),
      JSON.stringify({ ...key }),
      String(key),
      `${key}`,
      JSON.stringify(structuredClone(key)),
    ];
    for (const v of views) {
      expect(v).not.toContain(pemBody);
      expect(v).not.toContain(der.slice(50, 90));
      expect(v).not.toMatch(/PRIVATE KEY/);
    }
    expect(JSON.parse(JSON.stringify(key))).toEqual({
      type: 'service_account',
      clientEmail: good.fields.client_email,
      clientId: good.fields.client_id,
      privateKeyId: good.fields.private_key_id,
      tokenUri: 'https://oauth2.googleapis.com/token',
      projectId: 'mailgate-test',
    });
    expect(inspect(key)).toBe(`[ServiceAccountKey ${good.fields.client_email}]`);
    expect(Object.keys(key)).not.toContain('privateKey');
  });

  it('names each missing field, all at once', () => {
    const { private_key: _pk, client_email: _ce, token_uri: _tu, ...rest } = good.fields;
    const problems = problemsOf(JSON.stringify(rest));
    expect(problems.map((p) => p.field).sort()).toEqual(['client_email', 'private_key', 'token_uri']);
    expect(problems.find((p) => p.field === 'private_key')!.message).toBe('private_key is missing');
  });

  it('refuses what is not a service-account key, saying what it is', () => {
    expect(problemsOf('not json {')).toEqual([{ field: null, message: expect.stringMatching(/^is not JSON/) }]);
    expect(problemsOf('[1,2]')[0]!.message).toMatch(/not a JSON object/);
    expect(problemsOf(JSON.stringify({ installed: { client_id: 'x' } }))[0]!.message).toMatch(/OAuth client file/);
    expect(problemsOf(withFields({ type: 'authorized_user' }))).toContainEqual({
      field: 'type',
      message: 'type is "authorized_user" (a user\'s credentials from gcloud auth application-default login), not "service_account"',
    });
    expect(problemsOf(withFields({ type: undefined }))).toContainEqual({ field: 'type', message: 'type is missing' });
  });

  it('checks each field', () => {
    expect(problemsOf(withFields({ client_email: 'nobody' }))).toContainEqual({ field: 'client_email', message: expect.stringMatching(/not an email address/) });
    expect(problemsOf(withFields({ client_id: 12 }))).toContainEqual({ field: 'client_id', message: 'client_id must be a string, not number' });
    expect(problemsOf(withFields({ client_id: 'abc' }))).toContainEqual({ field: 'client_id', message: expect.stringMatching(/numeric client id/) });
    expect(problemsOf(withFields({ private_key_id: 'a b' }))).toContainEqual({ field: 'private_key_id', message: expect.stringMatching(/key id/) });
    expect(problemsOf(withFields({ token_uri: 'http://oauth2.googleapis.com/token' }))).toContainEqual({ field: 'token_uri', message: 'token_uri must be an https URL, not http://' });
    expect(problemsOf(withFields({ token_uri: 'nope' }))).toContainEqual({ field: 'token_uri', message: expect.stringMatching(/not a URL/) });
    // A token server on this machine may be plain http (tests, a local proxy).
    expect(parseServiceAccountKey(withFields({ token_uri: 'http://127.0.0.1:9/token' })).tokenUri).toBe('http://127.0.0.1:9/token');
  });

  it('refuses a private key that does not parse, and says why', () => {
    const broken = good.fields.private_key.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!');
    expect(problemsOf(withFields({ private_key: broken }))).toContainEqual({ field: 'private_key', message: expect.stringMatching(/^private_key does not parse as a private key/) });
    expect(problemsOf(withFields({ private_key: 'hello' }))).toContainEqual({ field: 'private_key', message: expect.stringMatching(/not a PEM private key/) });
    expect(problemsOf(withFields({ private_key: good.fields.private_key.replace(/\n/g, '\\n') }))).toContainEqual({
      field: 'private_key',
      message: expect.stringMatching(/escaped twice/),
    });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(problemsOf(withFields({ private_key: ec }))).toContainEqual({ field: 'private_key', message: expect.stringMatching(/ec key; Google signs .* RSA/) });
  });

  it('refuses an oversized file before parsing it', () => {
    expect(problemsOf(' '.repeat(70_000))[0]!.message).toMatch(/bytes; a service-account key file is a few KB/);
  });
});
