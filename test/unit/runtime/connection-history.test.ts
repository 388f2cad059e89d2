import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { ConnectionHistoryRecorder, historyState } from '../../../src/runtime/connection-history.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

let store: Store | null = null;
afterEach(async () => {
  await store?.close();
  store = null;
});

async function open(): Promise<Store> {
  store = await openStore({ dataDir: tmpDataDir('mg-history-') }, { cipher: new SecretCipher(randomBytes(32)), logger: silentLogger() });
  return store;
}

describe('connection history recorder', () => {
  it('maps connector states: idle and polling are connected, connecting is no row', () => {
    expect(['idle', 'polling', 'connecting', 'backoff', 'error', 'stopped'].map((s) => historyState('incoming', s))).toEqual([
      'connected',
      'connected',
      null,
      'backoff',
      'error',
      'stopped',
    ]);
    expect(['ok', 'error', 'stopped'].map((s) => historyState('outgoing', s))).toEqual(['ok', 'error', null]);
  });

  it('writes a row only when the state or the failure changes, in the order they happened', async () => {
    const s = await open();
    const rec = new ConnectionHistoryRecorder(s.connectionHistory);
    const seq: [string, string | null][] = [
      ['connecting', null],
      ['error', 'Not authorized yet.'],
      ['connecting', 'Not authorized yet.'],
      ['error', 'Not authorized yet.'],
      ['connecting', null],
      ['idle', null],
      ['polling', null],
      ['idle', 'stale text kept by the connector'],
      ['backoff', 'The incoming server refused the connection.'],
      ['connecting', 'The incoming server refused the connection.'],
      ['backoff', 'The incoming server refused the connection.'],
      ['backoff', 'The incoming server did not answer.'],
      ['polling', null],
      ['stopped', null],
    ];
    let t = 1_000;
    await Promise.all(seq.map(([state, error]) => rec.note('support', 'incoming', state, error, t++)));
    await rec.note('support', 'outgoing', 'ok', null, t++);
    await rec.note('support', 'outgoing', 'ok', null, t++);
    const rows = await s.connectionHistory.recent('support', 50);
    expect(rows.reverse().map((r) => [r.side, r.state, r.error])).toEqual([
      ['incoming', 'error', 'Not authorized yet.'],
      ['incoming', 'connected', null],
      ['incoming', 'backoff', 'The incoming server refused the connection.'],
      ['incoming', 'backoff', 'The incoming server did not answer.'],
      ['incoming', 'connected', null],
      ['incoming', 'stopped', null],
      ['outgoing', 'ok', null],
    ]);
  });

  it('a write that failed is not remembered: the same change is written once the store takes it', async () => {
    const s = await open();
    let fail = true;
    const errors: unknown[] = [];
    const repo = {
      record: (c: Parameters<Store['connectionHistory']['record']>[0]) => (fail ? Promise.reject(new Error('disk full')) : s.connectionHistory.record(c)),
      recent: s.connectionHistory.recent.bind(s.connectionHistory),
    };
    const rec = new ConnectionHistoryRecorder(repo, (e) => errors.push(e));
    await rec.note('support', 'incoming', 'idle', null, 1);
    expect(errors).toHaveLength(1);
    fail = false;
    await rec.note('support', 'incoming', 'idle', null, 2);
    expect((await s.connectionHistory.recent('support', 5)).map((r) => r.at)).toEqual([2]);
  });
});
