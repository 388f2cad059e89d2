#!/usr/bin/env node
// The container's HEALTHCHECK: GET /healthz on the address mailgate really
// listens on, which follows MAILGATE_LISTEN (the image sets it), else the
// config file's server.listen ($MAILGATE_CONFIG), else 127.0.0.1:8025.
// Exit 0 when healthy, 1 otherwise (with one line saying why).
import { readFileSync } from 'node:fs';

async function listenSetting() {
  if (process.env.MAILGATE_LISTEN) return process.env.MAILGATE_LISTEN;
  const file = process.env.MAILGATE_CONFIG ?? 'config/mailgate.yaml';
  try {
    const { parse } = await import('yaml');
    const doc = parse(readFileSync(file, 'utf8'));
    if (typeof doc?.server?.listen === 'string') return doc.server.listen;
  } catch {
    // unreadable config: the daemon itself reports that; probe the default
  }
  return '127.0.0.1:8025';
}

const listen = await listenSetting();
const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(listen) ?? /^([^:[\]]+):(\d+)$/.exec(listen);
if (!m) {
  console.error(`healthcheck: cannot read the listen address "${listen}"`);
  process.exit(1);
}
// A wildcard listener answers on loopback.
const host = m[1] === '0.0.0.0' ? '127.0.0.1' : m[1] === '::' ? '[::1]' : m[1].includes(':') ? `[${m[1]}]` : m[1];
const url = `http://${host}:${m[2]}/healthz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  if (!res.ok) {
    console.error(`healthcheck: ${url} answered HTTP ${res.status}`);
    process.exit(1);
  }
} catch (err) {
  console.error(`healthcheck: ${url} did not answer (${err?.cause?.code ?? err?.name ?? err})`);
  process.exit(1);
}
