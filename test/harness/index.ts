import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { startDovecot as startDovecotIn, type Dovecot, type DovecotOptions } from './dovecot.js';
import { OAuthAdmin } from './oauth-process.js';
import { startPostgres as startPostgresIn, type Postgres, type PostgresOptions } from './postgres.js';
import type { HarnessInfo } from './types.js';

export type { HarnessInfo } from './types.js';
export { OAuthAdmin, startOAuthServer } from './oauth-process.js';
export { TEST_PASSWORD } from './dovecot.js';
export type { Postgres, PostgresOptions } from './postgres.js';
export { tmpDataDir } from './tmp-dir.js';
export { WebhookSink, verifySignature } from './webhook-sink.js';
export { SmtpSink } from './smtp-sink.js';
export { appendMessages, listMessages, mailboxExists, makeMessage, passwordClient, saveMessages, setUidValidity } from './mailbox.js';

/**
 * The shared servers started by global-setup.ts. They are shared by test
 * files running in parallel: use your own mailbox user (`uniqueUser`) and
 * data dir. A test that breaks a server on purpose (faults, introspection
 * down, restarts) starts a private one with startOAuthServer()/startDovecot().
 */
export function getHarness(): HarnessInfo {
  return inject('harness');
}

export function oauthAdmin(h: HarnessInfo = getHarness()): OAuthAdmin {
  return new OAuthAdmin(h.oauthUrl);
}

export function uniqueUser(prefix = 'user'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A private Dovecot (see dovecot.ts) whose base dir is under the run's root; stop() removes it. */
export function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  return startDovecotIn({ parentDir: inject('testTmpRoot'), ...opts });
}

/**
 * A private PostgreSQL (see postgres.ts) whose dir is under the run's root;
 * stop() removes it. One per test file is the idea: createDatabase() gives
 * each test its own database on it.
 */
export function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  return startPostgresIn({ parentDir: inject('testTmpRoot'), ...opts });
}

/** The SMTP sink Dovecot's submission relays to (it runs in the setup process). */
export function relaySink(h: HarnessInfo = getHarness()) {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${h.relaySinkControlUrl}${path}`, {
      method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : null,
    });
    return (await r.json()) as T;
  };
  return {
    messages: async () => (await call<{ messages: { from: string; to: string[]; raw: string }[] }>('GET', '/messages')).messages,
    clear: () => call('POST', '/clear'),
    rejectNext: (code: number, message: string, count = 1) => call('POST', '/reject', { code, message, count }),
    setDown: (down: boolean) => call('POST', '/down', { down }),
  };
}
