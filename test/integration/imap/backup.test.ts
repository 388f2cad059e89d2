import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { appendMessages, getHarness, makeMessage, tmpDataDir, uniqueUser } from '../../harness/index.js';
import { freePort, runCli } from '../daemon/run-daemon.js';
import { ADMIN, authorizeThroughDaemon, e2eLifecycle, writeE2EConfig } from './e2e-helpers.js';

const h = getHarness();
const CLIENT = 'e2e-backup';
const e2e = e2eLifecycle(CLIENT);

const ids = (reqs: { json: unknown }[]) =>
  reqs.flatMap((r) => {
    const j = r.json as { event?: string; id?: string; data?: { id?: string } } | null;
    const id = j?.data?.id ?? j?.id;
    return j?.event === 'message.received' && id ? [id] : [];
  });

describe('mailgate backup FILE and the README restore procedure (daemon, Dovecot)', () => {
  it('a backup taken while mail is ingested restores into a fresh dataDir: tokens kept, nothing delivered before it announced again', async () => {
    const user = uniqueUser('backup');
    const sink = await e2e.sink();
    const cfg = await writeE2EConfig(h, { user, clientId: CLIENT, webhookUrl: sink.url, mode: 'poll', pollInterval: '1s' });
    await appendMessages(h, user, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => makeMessage(i, { messageId: `<before-${i}@example.com>` })));
    const daemon = await e2e.daemon(cfg.path, cfg.port);
    await authorizeThroughDaemon(daemon);
    await sink.waitFor((s) => s.acknowledged.length >= 8, 30_000);
    const before = new Set(ids(sink.acknowledged));
    expect(before.size).toBe(8);

    // More mail arrives while the backup runs.
    const more = appendMessages(h, user, Array.from({ length: 20 }, (_, i) => makeMessage(100 + i, { messageId: `<during-${i}@example.com>` })));
    const file = join(cfg.dir, 'backup.db');
    const backup = await runCli(['backup', file, '--config', cfg.path]);
    await more;
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(/^backup written to .*backup\.db \(\d+ bytes\); keep it with the secret key/);
    expect(existsSync(`${file}-wal`)).toBe(false);
    const again = await runCli(['backup', file, '--config', cfg.path]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists already');
    await sink.waitFor((s) => new Set(ids(s.acknowledged)).size >= 28, 60_000);
    const firstRun = new Set(ids(sink.acknowledged));
    expect((await daemon.stop()).code).toBe(0);

    // The README's restore: a fresh dataDir with the backup as mailgate.db and the same key.
    const fresh = tmpDataDir('mg-restore-');
    const port = await freePort();
    mkdirSync(join(fresh, 'data'));
    copyFileSync(file, join(fresh, 'data/mailgate.db'));
    copyFileSync(join(cfg.dir, 'data/secret.key'), join(fresh, 'data/secret.key'));
    const sink2 = await e2e.sink();
    const restoredCfg = join(fresh, 'mailgate.yaml');
    writeFileSync(restoredCfg, readFileSync(cfg.path, 'utf8').replace(`listen: 127.0.0.1:${cfg.port}`, `listen: 127.0.0.1:${port}`).replace(sink.url, sink2.url));
    const restored = await e2e.daemon(restoredCfg, port);
    // The tokens came back with the key: the account works without authorizing again.
    const accounts = (await (await fetch(`${restored.url}/v1/accounts`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      accounts: { token: { state: string } }[];
    };
    expect(accounts.accounts[0]?.token.state).toBe('ok');
    // Let it poll a few times; what the backup had seen delivered is never announced again.
    const start = Date.now();
    while (Date.now() - start < 8_000) await sleep(250);
    const after = ids(sink2.requests);
    expect(after.filter((id) => before.has(id))).toEqual([]);
    // Anything announced again was delivered after the backup point, with the same id (no new ids, no gap).
    expect(after.every((id) => firstRun.has(id))).toBe(true);
  });
});
