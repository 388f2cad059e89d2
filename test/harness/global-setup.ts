import type { TestProject } from 'vitest/node';
import { startDovecot, type Dovecot } from './dovecot.js';
import { startOAuthServer, type OAuthServerProcess } from './oauth-process.js';
import { SmtpSink, startSinkControl } from './smtp-sink.js';
import { sweepStaleTestTmp } from './sweep.js';
import { createTestTmpRoot, removeTestTmp } from './tmp.js';
import type { HarnessInfo } from './types.js';

/**
 * Starts the real servers once per test run, on loopback high ports:
 * the OAuth2 server process, an SMTP sink for Dovecot's submission relay
 * (with an HTTP control port for the test workers), and Dovecot. Every
 * temporary file of the run goes under one root, removed last. First it
 * sweeps what runs killed before their teardown left behind (sweep.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    await sweepStaleTestTmp();
  } catch (err) {
    console.error('harness: sweeping stale test dirs failed:', err);
  }
  const tmpRoot = createTestTmpRoot();
  // First pushed, so last run: the servers have stopped writing into it.
  const stops: (() => Promise<void>)[] = [async () => removeTestTmp(tmpRoot)];
  const teardown = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        console.error('harness teardown:', err);
      }
    }
  };
  try {
    project.provide('testTmpRoot', tmpRoot);
    const oauth: OAuthServerProcess = await startOAuthServer();
    stops.push(() => oauth.stop());
    const relay = await SmtpSink.start();
    stops.push(() => relay.close());
    const control = await startSinkControl(relay);
    stops.push(() => control.close());
    const dovecot: Dovecot = await startDovecot({ introspectionUrl: `${oauth.url}/introspect`, relayPort: relay.port, parentDir: tmpRoot });
    stops.push(() => dovecot.stop());
    const info: HarnessInfo = {
      oauthUrl: oauth.url,
      imapPort: dovecot.imapPort,
      pop3Port: dovecot.pop3Port,
      submissionPort: dovecot.submissionPort,
      dovecotConfig: dovecot.configPath,
      dovecotLog: dovecot.logPath,
      mailRoot: dovecot.mailRoot,
      relaySinkControlUrl: control.url,
      relaySinkPort: relay.port,
    };
    project.provide('harness', info);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
