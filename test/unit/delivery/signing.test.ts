import { createHmac, randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { MailgateError } from '../../../src/errors.js';
import { verifySignature } from '../../../src/delivery/signature.js';
import {
  MAX_SECRETS,
  createSigner,
  secretProblem,
  signatureHeaders,
  signingConfigProblems,
  verifyMailgateSignature,
} from '../../../src/delivery/signing.js';

const body = Buffer.from(JSON.stringify({ event: 'message.received', id: 'msg_1', subject: 'Grüße 🖨️🔥', text: 'ü'.repeat(1000) }), 'utf8');
const now = () => Math.floor(Date.now() / 1000);
const whsec = (bytes: Buffer) => `whsec_${bytes.toString('base64')}`;

describe('signature: mailgate', () => {
  it('sends one v1= per secret, newest first, each verifiable by a v1 receiver holding that secret', () => {
    const signer = createSigner('mailgate', ['new-secret', 'old-secret']);
    const ts = now();
    const h = signatureHeaders(signer, 'dlv_1', body, ts);
    expect(Object.keys(h)).toEqual(['X-Mailgate-Signature']);
    const mac = (s: string) => createHmac('sha256', s).update(`${ts}.`).update(body).digest('hex');
    expect(h['X-Mailgate-Signature']).toBe(`t=${ts},v1=${mac('new-secret')},v1=${mac('old-secret')}`);
    // The v1 verifier (one secret per receiver) accepts it with either secret.
    for (const s of ['new-secret', 'old-secret']) expect(verifySignature(s, h['X-Mailgate-Signature'], body.toString('utf8'))).toBe(true);
    expect(verifySignature('other', h['X-Mailgate-Signature'], body.toString('utf8'))).toBe(false);
  });

  it('verifyMailgateSignature accepts any secret of the receiver and refuses wrong secrets, changed bodies and stale timestamps', () => {
    const signer = createSigner('mailgate', ['s2', 's1']);
    const h = signatureHeaders(signer, 'dlv_1', body)['X-Mailgate-Signature'];
    expect(verifyMailgateSignature(['s1'], h, body)).toBe(true);
    expect(verifyMailgateSignature(['s3', 's2'], h, body)).toBe(true);
    expect(verifyMailgateSignature(['s3'], h, body)).toBe(false);
    expect(verifyMailgateSignature(['s1'], h, Buffer.concat([body, Buffer.from(' ')]))).toBe(false);
    const stale = signatureHeaders(signer, 'dlv_1', body, now() - 301)['X-Mailgate-Signature'];
    expect(verifyMailgateSignature(['s1'], stale, body)).toBe(false);
    const future = signatureHeaders(signer, 'dlv_1', body, now() + 301)['X-Mailgate-Signature'];
    expect(verifyMailgateSignature(['s1'], future, body)).toBe(false);
    for (const bad of [undefined, '', 't=1', 'v1=00', `t=${now()},v1=zz`]) expect(verifyMailgateSignature(['s1'], bad, body)).toBe(false);
  });

  it('uses a whsec_ secret as written (its UTF-8 bytes), as v1 did', () => {
    const s = whsec(randomBytes(24));
    const h = signatureHeaders(createSigner('mailgate', [s]), 'dlv_1', body, 1_800_000_000)['X-Mailgate-Signature'];
    expect(h).toBe(`t=1800000000,v1=${createHmac('sha256', s).update('1800000000.').update(body).digest('hex')}`);
  });
});

describe('signature: standard (checked with the standardwebhooks package)', () => {
  const newKey = randomBytes(32);
  const oldKey = randomBytes(24);
  const secrets = [whsec(newKey), whsec(oldKey)];
  const signer = createSigner('standard', secrets);

  it('sends webhook-id (the delivery id), webhook-timestamp and one v1,<base64> per secret, space-separated, newest first', () => {
    const ts = now();
    const h = signatureHeaders(signer, 'dlv_abc', body, ts);
    expect(Object.keys(h)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    expect(h['webhook-id']).toBe('dlv_abc');
    expect(h['webhook-timestamp']).toBe(String(ts));
    const sig = (k: Buffer) => createHmac('sha256', k).update(`dlv_abc.${ts}.`).update(body).digest('base64');
    expect(h['webhook-signature']).toBe(`v1,${sig(newKey)} v1,${sig(oldKey)}`);
    // The package's own sign gives the same bytes for each secret.
    for (const [i, s] of secrets.entries()) expect(new Webhook(s).sign('dlv_abc', new Date(ts * 1000), body)).toBe(h['webhook-signature']?.split(' ')[i]);
  });

  it("the package's Webhook.verify accepts the delivery with every secret of the rotation, for a Buffer and a string body", () => {
    const h = signatureHeaders(signer, 'dlv_abc', body);
    for (const s of secrets) {
      expect(new Webhook(s).verify(body, h)).toEqual(JSON.parse(body.toString('utf8')));
      expect(new Webhook(s).verify(body.toString('utf8'), h)).toEqual(JSON.parse(body.toString('utf8')));
    }
    // A string body signs the same as its UTF-8 bytes.
    expect(signatureHeaders(signer, 'dlv_abc', body.toString('utf8'), 1_800_000_000)).toEqual(signatureHeaders(signer, 'dlv_abc', body, 1_800_000_000));
  });

  it('the package refuses a wrong secret, another delivery id, a changed body, and a timestamp more than 5 minutes off', () => {
    const h = signatureHeaders(signer, 'dlv_abc', body);
    const verify = (s: string, headers: Record<string, string>, b: Buffer = body) => () => new Webhook(s).verify(b, headers);
    expect(verify(whsec(randomBytes(32)), h)).toThrow(new WebhookVerificationError('No matching signature found'));
    expect(verify(secrets[0] as string, { ...h, 'webhook-id': 'dlv_other' })).toThrow('No matching signature found');
    expect(verify(secrets[0] as string, h, Buffer.concat([body, Buffer.from('\n')]))).toThrow('No matching signature found');
    const stale = signatureHeaders(signer, 'dlv_abc', body, now() - 301);
    for (const s of secrets) expect(verify(s, stale)).toThrow('Message timestamp too old');
    expect(verify(secrets[1] as string, signatureHeaders(signer, 'dlv_abc', body, now() + 301))).toThrow('Message timestamp too new');
    // Within the tolerance both ways it is accepted.
    expect(verify(secrets[1] as string, signatureHeaders(signer, 'dlv_abc', body, now() - 290))).not.toThrow();
  });

  it('keys a secret that is not whsec_ with its UTF-8 bytes; the package verifies it given those bytes in raw format', () => {
    const plain = ['correct horse battery staple', 'pässwörd-ünïcode-🔑'];
    const h = signatureHeaders(createSigner('standard', plain), 'dlv_1', body);
    for (const s of plain) expect(() => new Webhook(Buffer.from(s, 'utf8'), { format: 'raw' }).verify(body, h)).not.toThrow();
    // The package's raw string form reads one byte per UTF-16 unit: right for ASCII, not for the second secret.
    expect(() => new Webhook(plain[0] as string, { format: 'raw' }).verify(body, h)).not.toThrow();
    expect(() => new Webhook(plain[1] as string, { format: 'raw' }).verify(body, h)).toThrow('No matching signature found');
  });

  it('signs once for a key listed twice (two variables with one value during a rotation)', () => {
    const k = whsec(randomBytes(24));
    expect(createSigner('standard', [k, k]).keys).toHaveLength(1);
    expect(signatureHeaders(createSigner('standard', [k, k]), 'dlv_1', body)['webhook-signature']?.split(' ')).toHaveLength(1);
  });
});

describe('signing config validation', () => {
  it('refuses a whsec_ secret that is not valid base64, in plain words without quoting it', () => {
    for (const bad of ['whsec_not base64', 'whsec_abc', 'whsec_YWJj!', 'whsec_-_8=', 'whsec_YQ=', 'whsec_YR==', 'whsec_YWJj\n']) {
      const p = secretProblem('standard', bad);
      expect(p, bad).toMatch(/^starts with whsec_ but what follows is not valid base64/);
      expect(p).not.toContain(bad.slice(6));
    }
    expect(secretProblem('standard', 'whsec_')).toBe('is whsec_ with no key after it');
    expect(secretProblem('standard', whsec(randomBytes(24)))).toBeNull();
    expect(secretProblem('standard', 'whsec_YQ==')).toBeNull();
    expect(secretProblem('standard', 'plain secret')).toBeNull();
    // In mailgate mode whsec_ has no meaning: any non-empty string.
    expect(secretProblem('mailgate', 'whsec_not base64')).toBeNull();
    expect(secretProblem('mailgate', '')).toBe('is empty');
  });

  it('reports secrets: [], both secret and secrets, too many secrets, bad entries by index, and an unknown mode', () => {
    expect(signingConfigProblems({ secret: 's' })).toEqual([]);
    expect(signingConfigProblems({ signature: 'standard', secrets: [whsec(randomBytes(24)), 'old plain'] })).toEqual([]);
    expect(signingConfigProblems({ secrets: [] })).toEqual([{ key: 'secrets', index: null, message: 'is empty; list at least one secret, newest first' }]);
    expect(signingConfigProblems({ secret: 'a', secrets: ['b'] })).toEqual([
      { key: 'secrets', index: null, message: 'set either secret or secrets, not both (secrets: [new, old] replaces secret during a rotation)' },
    ]);
    expect(signingConfigProblems({})).toEqual([
      { key: 'secret', index: null, message: 'a webhook needs secret (or secretFile), or secrets: [newest, …] during a rotation' },
    ]);
    expect(signingConfigProblems({ secrets: 'one' })).toEqual([{ key: 'secrets', index: null, message: 'must be a list of secrets, newest first' }]);
    expect(signingConfigProblems({ secrets: Array.from({ length: MAX_SECRETS + 1 }, (_, i) => `s${i}`) })[0]?.message).toBe(
      'lists 9 secrets; at most 8 are accepted (the new one and those still being retired)',
    );
    const p = signingConfigProblems({ signature: 'standard', secrets: ['whsec_ok==', 'fine', '', 'whsec_%%'] });
    expect(p.map((x) => [x.key, x.index])).toEqual([
      ['secrets', 0],
      ['secrets', 2],
      ['secrets', 3],
    ]);
    expect(signingConfigProblems({ signature: 'hmac', secret: 's' })).toEqual([{ key: 'signature', index: null, message: 'must be mailgate or standard' }]);
    expect(signingConfigProblems({ signature: 'standard', secret: 'whsec_?' })[0]).toMatchObject({ key: 'secret', index: null });
  });

  it('createSigner throws CONFIG_INVALID naming the entry by position', () => {
    expect(() => createSigner('standard', ['whsec_ok+/', 'whsec_%'])).toThrow(MailgateError);
    expect(() => createSigner('standard', [whsec(randomBytes(8)), 'whsec_%'])).toThrow(/^secret 2 of 2 starts with whsec_ but what follows is not valid base64/);
    expect(() => createSigner('mailgate', [])).toThrow('a webhook needs at least one secret');
  });
});
