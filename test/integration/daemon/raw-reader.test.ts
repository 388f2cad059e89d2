import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type * as StoreSource from '../../../src/store/sqlite/sqlite-store.js';
import type * as CipherSource from '../../../src/secrets/cipher.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';
import { assertBuilt, ROOT } from './run-daemon.js';

/*
 * Large raw messages are read on a thread of their own (the built
 * dist/store/sqlite/raw-reader-worker.js), small ones on the main
 * connection; either way the bytes are those stored.
 */
describe('raw-message reader thread', () => {
  it('reads large raw messages on the thread, small ones directly, byte for byte', async () => {
    assertBuilt();
    const { SqliteStore } = (await import(`${ROOT}/dist/store/sqlite/sqlite-store.js`)) as typeof StoreSource;
    const { SecretCipher } = (await import(`${ROOT}/dist/secrets/cipher.js`)) as typeof CipherSource;
    const store = SqliteStore.open(tmpDataDir('mg-rawreader-'), new SecretCipher(randomBytes(32)));
    try {
      const big = Buffer.concat([Buffer.from('From: a@example.com\r\nSubject: big\r\n\r\n'), randomBytes(12 * 1024 * 1024)]);
      const small = Buffer.from('From: a@example.com\r\nSubject: small\r\n\r\nhi\r\n');
      const base = { account: 'a', internalDate: null, messageId: null, autoSubmitted: false, webhook: 'w' };
      const origin = (uid: number) => ({ kind: 'imap' as const, mailbox: 'INBOX', uid, uidValidity: 1 });
      const [b, s] = await store.ingest.insertMessages([{ ...base, origin: origin(1), raw: big }, { ...base, origin: origin(2), raw: small }], 1_000);
      const viaThread = await store.messages.getWithRaw(b?.id ?? '');
      expect(viaThread?.raw.equals(big)).toBe(true);
      expect(store.rawThreadReads).toBe(1);
      expect((await store.messages.getRaw(b?.id ?? ''))?.equals(big)).toBe(true);
      expect(store.rawThreadReads).toBe(2);
      expect((await store.messages.getWithRaw(s?.id ?? ''))?.raw.equals(small)).toBe(true);
      expect(store.rawThreadReads).toBe(2);
      expect(await store.messages.getRaw('msg_missing')).toBeNull();
    } finally {
      await store.close();
    }
  });
});
