#!/usr/bin/env node
// A minimal receiver for mailgate's webhooks: verifies the signature (either
// mode, every secret of a rotation), refuses timestamps more than 5 minutes
// off, drops repeats by payload id, and prints, one JSON line per delivery,
// what an issue tracker would do with it. Node 20 and nothing else; the
// `standardwebhooks` package only for `signature: standard`.
//
//   MAILGATE_SIGNATURE=mailgate|standard   (default mailgate, as the webhook's `signature`)
//   MAILGATE_WEBHOOK_SECRETS='["new","old"]' or MAILGATE_WEBHOOK_SECRET=...
//   HOST (default 127.0.0.1), PORT (default 8787; 0 picks a free port)
//
// stdout: {"listening":"http://127.0.0.1:8787/"} once, then one line per
// accepted or repeated delivery. stderr: one line per refused request.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { trackerActionOf } from './tracker.mjs';

const TOLERANCE_SECONDS = 5 * 60;
/** mailgate's maxBodyBytes defaults to 25 MB; anything larger is refused unread. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Payload ids remembered for dropping repeats; a real pipeline keeps them in its database. */
const MAX_REMEMBERED_IDS = 100_000;

const mode = process.env.MAILGATE_SIGNATURE ?? 'mailgate';
const secrets = process.env.MAILGATE_WEBHOOK_SECRETS
  ? JSON.parse(process.env.MAILGATE_WEBHOOK_SECRETS)
  : process.env.MAILGATE_WEBHOOK_SECRET
    ? [process.env.MAILGATE_WEBHOOK_SECRET]
    : [];
if (mode !== 'mailgate' && mode !== 'standard') fail(`MAILGATE_SIGNATURE must be mailgate or standard, not ${mode}`);
if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s !== '')) {
  fail('set MAILGATE_WEBHOOK_SECRET, or MAILGATE_WEBHOOK_SECRETS to a JSON list of secrets');
}

/** One verifier per secret for `signature: standard` (the package's own verify). */
const standardVerifiers = mode === 'standard' ? await standardVerifiersFor(secrets) : [];

async function standardVerifiersFor(list) {
  let Webhook;
  try {
    ({ Webhook } = await import('standardwebhooks'));
  } catch {
    fail('signature: standard needs the standardwebhooks package: npm install standardwebhooks');
  }
  // A whsec_ secret is base64 key bytes; any other string is used as its UTF-8 bytes
  // (the package's raw string form would read non-ASCII characters wrongly).
  return list.map((s) => (s.startsWith('whsec_') ? new Webhook(s) : new Webhook(Buffer.from(s, 'utf8'), { format: 'raw' })));
}

/** `X-Mailgate-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]`: the reason it is refused, or null. */
function mailgateRefusal(header, body, nowSeconds) {
  if (typeof header !== 'string' || header.length > 4096) return 'missing X-Mailgate-Signature';
  let t = null;
  const macs = [];
  for (const part of header.split(',')) {
    const [k, v = ''] = part.trim().split('=', 2);
    if (k === 't' && /^\d{1,12}$/.test(v)) t = v;
    else if (k === 'v1' && /^[0-9a-f]{64}$/i.test(v)) macs.push(Buffer.from(v, 'hex'));
  }
  if (t === null || macs.length === 0) return 'malformed X-Mailgate-Signature';
  if (Math.abs(nowSeconds - Number(t)) > TOLERANCE_SECONDS) return 'timestamp more than 5 minutes off';
  const ok = secrets.some((s) => {
    const expected = createHmac('sha256', s).update(`${t}.`).update(body).digest();
    return macs.some((m) => timingSafeEqual(m, expected));
  });
  return ok ? null : 'no signature matches our secrets';
}

/** Standard Webhooks: the reason it is refused, or null. */
function standardRefusal(headers, body) {
  const h = { 'webhook-id': headers['webhook-id'], 'webhook-timestamp': headers['webhook-timestamp'], 'webhook-signature': headers['webhook-signature'] };
  let last = 'no signature matches our secrets';
  for (const wh of standardVerifiers) {
    try {
      wh.verify(body, h, { jsonParse: false });
      return null;
    } catch (err) {
      // The package checks the timestamp before the signature, with the spec's 5 minutes.
      last = /timestamp/i.test(err.message) ? 'timestamp more than 5 minutes off' : err.message === 'Missing required headers' ? 'missing webhook-* headers' : last;
    }
  }
  return last;
}

const seen = new Set();
function remember(key) {
  seen.add(key);
  // Oldest first: a Set iterates in insertion order.
  if (seen.size > MAX_REMEMBERED_IDS) seen.delete(seen.values().next().value);
}

const threads = new Map();
let issues = 0;
const newIssueKey = () => `SUP-${++issues}`;

function print(stream, obj) {
  stream.write(`${JSON.stringify(obj)}\n`);
}

function fail(message) {
  print(process.stderr, { error: message });
  process.exit(2);
}

function answer(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      answer(res, 413, { error: 'body too large' });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    const body = Buffer.concat(chunks);
    const delivery = req.headers['x-mailgate-delivery'] ?? req.headers['webhook-id'] ?? null;
    const refusal =
      mode === 'standard' ? standardRefusal(req.headers, body) : mailgateRefusal(req.headers['x-mailgate-signature'], body, Math.floor(Date.now() / 1000));
    if (refusal) {
      // A 4xx tells mailgate not to retry: it parks the delivery, replayable once fixed.
      print(process.stderr, { refused: refusal, delivery });
      return answer(res, 401, { error: refusal });
    }
    let payload;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      print(process.stderr, { refused: 'body is not JSON', delivery });
      return answer(res, 400, { error: 'body is not JSON' });
    }
    // At-least-once delivery: the same message always carries the same id.
    const key = `${payload.event}:${payload.id}`;
    if (seen.has(key)) {
      print(process.stdout, { duplicate: payload.id, delivery });
      return answer(res, 200, { ok: true, duplicate: true });
    }
    const tracker = trackerActionOf(payload, threads, newIssueKey);
    remember(key);
    print(process.stdout, { delivery, id: payload.id, tracker });
    return answer(res, 200, { ok: true });
  });
});

server.listen(Number(process.env.PORT ?? 8787), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  print(process.stdout, { listening: `http://${address}:${port}/`, signature: mode, secrets: secrets.length });
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
