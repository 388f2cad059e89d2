import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command, Option } from 'commander';
import { resolveAdminToken } from '../admin-token.js';
import { MailgateError } from '../errors.js';
import { createConnector } from '../incoming/factory.js';
import { IngestService } from '../incoming/ingest.js';
import { createMetrics } from '../metrics.js';
import { testSmtp } from '../outgoing/smtp.js';
import { inspectMessage } from '../parse/auto-submitted.js';
import { readRelayStats, relayStatusView } from '../relay/status.js';
import { deliveryView } from '../http/routes/deliveries.js';
import { parseAccountsQuery, type AccountState } from '../http/routes/accounts.js';
import { configPathFrom } from './common.js';
import { withContext, type CliContext } from './context.js';

/** How long `mailgate authorize` waits for the consent to come back. */
const AUTHORIZE_WAIT_MS = 15 * 60_000;
const AUTHORIZE_POLL_MS = 1_000;

function daemonUrl(ctx: CliContext): string {
  const { host, port } = ctx.config.server.listen;
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

export function registerOperationCommands(program: Command, configOption: () => Option): void {
  program
    .command('authorize <account>')
    .description("print the provider's authorization URL (or a device code) and wait until the tokens are stored")
    .option('--device', 'use the device authorization grant (RFC 8628) instead of a browser redirect')
    .addOption(configOption())
    .action(async (account: string, opts: { config?: string; device?: boolean }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        if (opts.device) {
          await ctx.flows.deviceAuthorization(account, (info) => {
            console.log(`To authorize ${account}, open ${info.verificationUri} and enter the code ${info.userCode}`);
            if (info.verificationUriComplete) console.log(`(or open ${info.verificationUriComplete})`);
            console.log(`Waiting up to ${Math.round(info.expiresIn / 60)} minutes…`);
          });
          console.log(`${account} is authorized.`);
          return;
        }
        const started = Date.now();
        const admin = resolveAdminToken(ctx.config.server.adminToken, ctx.config.dataDir).token;
        let res: Response;
        try {
          res = await fetch(`${daemonUrl(ctx)}/v1/accounts/${encodeURIComponent(account)}/authorize`, {
            method: 'POST',
            headers: { authorization: `Bearer ${admin}` },
          });
        } catch {
          throw new MailgateError('CONNECTION_FAILED', `the daemon is not reachable at ${daemonUrl(ctx)}; the callback needs it running (mailgate serve)`);
        }
        const body = (await res.json()) as { authorizationUrl?: string; error?: string };
        if (!res.ok || !body.authorizationUrl) throw new MailgateError('BAD_REQUEST', body.error ?? `HTTP ${res.status}`);
        console.log(`Open this URL in a browser and sign in as the mailbox owner:\n\n  ${body.authorizationUrl}\n`);
        console.log('Waiting for the provider to redirect back to the daemon…');
        while (Date.now() - started < AUTHORIZE_WAIT_MS) {
          const t = await ctx.store.tokens.get(account);
          if (t && t.state === 'ok' && t.updatedAt >= started) {
            console.log(`${account} is authorized.`);
            return;
          }
          await sleep(AUTHORIZE_POLL_MS);
        }
        throw new MailgateError('TIMEOUT', 'no authorization arrived; run the command again');
      });
    });

  program
    .command('backup <file>')
    .description('write a consistent copy of the database to FILE, safe while the daemon runs (restore: README, "Backup and restore")')
    .addOption(configOption())
    .action(async (file: string, opts: { config?: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const target = resolve(file);
        const { bytes } = await ctx.store.backup(target);
        console.log(`backup written to ${target} (${bytes} bytes); keep it with the secret key (${process.env.MAILGATE_SECRET_KEY ? 'MAILGATE_SECRET_KEY' : join(ctx.config.dataDir, 'secret.key')}), without which its secrets cannot be read`);
      });
    });

  const tokens = program.command('tokens').description('OAuth2 tokens');
  tokens
    .command('import <account>')
    .description('adopt a refresh token obtained elsewhere (verified with one refresh)')
    .requiredOption('--refresh-token-file <file>')
    .addOption(configOption())
    .action(async (account: string, opts: { config?: string; refreshTokenFile: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const token = readFileSync(opts.refreshTokenFile, 'utf8').trim();
        if (!token) throw new MailgateError('BAD_REQUEST', `${opts.refreshTokenFile} is empty`);
        await ctx.flows.importRefreshToken(account, token);
        console.log(`refresh token for ${account} verified and stored (encrypted)`);
      });
    });

  program
    .command('status')
    .description('accounts, token expiry, last poll, queue depths')
    .addOption(configOption())
    .option('--json', 'print JSON')
    .option('--state <states>', 'only accounts whose incoming state is one of these (comma-separated), e.g. error,backoff')
    .action(async (opts: { config?: string; json?: boolean; state?: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        // Three reads of the store however many accounts there are (thousands print in well under a second).
        const [sides, tokens, leases] = await Promise.all([ctx.store.accountStatus.list(), ctx.tokens.statusAll(), ctx.store.leases.list(Date.now())]);
        const incoming = new Map(sides.filter((s) => s.side === 'incoming').map((s) => [s.account, s]));
        const owners = new Map(leases.map((l) => [l.account, l.owner]));
        const states = opts.state === undefined ? null : parseAccountsQuery({ state: opts.state }).states ?? null;
        const accounts = [];
        for (const a of ctx.config.accounts) {
          const inc = incoming.get(a.name);
          const state = !a.enabled ? 'paused' : (inc?.state ?? 'stopped');
          if (states && !states.includes(state as AccountState)) continue;
          accounts.push({
            name: a.name,
            email: a.email,
            protocol: a.incoming.protocol,
            incoming: state,
            lastSuccessAt: inc?.lastSuccessAt ? new Date(inc.lastSuccessAt).toISOString() : null,
            lastError: inc?.lastError ?? null,
            token: tokens.get(a.name) ?? { state: 'missing', expiresAt: null, lastRefreshAt: null, refreshTokenIssuedAt: null, lastError: null },
            owner: owners.get(a.name) ?? null,
          });
        }
        const queue = await ctx.store.deliveries.countByStatus();
        const outbox = await ctx.store.outbox.counts();
        const relay = relayStatusView(ctx.config.relay, await readRelayStats(ctx.store.meta));
        if (opts.json) {
          console.log(JSON.stringify({ accounts, deliveries: queue, outbox, relay }, null, 2));
          return;
        }
        if (accounts.length === 0) console.log(states ? `no account in state ${states.join(', ')}` : 'no accounts configured');
        for (const a of accounts) {
          console.log(`${a.name} <${a.email}> ${a.protocol}: ${a.incoming}, last success ${a.lastSuccessAt ?? 'never'}`);
          console.log(`  token: ${a.token.state}, expires ${a.token.expiresAt ?? '-'}, refreshed ${a.token.lastRefreshAt ?? '-'}`);
          console.log(`  owner: ${a.owner ?? 'none (no replica holds its lease)'}`);
          if (a.lastError) console.log(`  incoming error: ${a.lastError}`);
          if (a.token.lastError) console.log(`  token error: ${a.token.lastError}`);
        }
        console.log(`deliveries: ${queue.pending} pending, ${queue.failed} failed, ${queue.delivered} delivered`);
        console.log(`outbox: ${outbox.queued + outbox.sending} queued, ${outbox.failed} failed, ${outbox.sent} sent`);
        if (relay) {
          console.log(`relay: ${relay.listen}${relay.tls ? ' (STARTTLS)' : ''}, ${relay.clients.length} client(s), ${relay.unknownLoginFailures} login(s) with an unknown username`);
          for (const c of relay.clients) {
            console.log(`  ${c.name} (${c.username} → ${c.account}): ${c.relayed} relayed, ${c.failures} failure(s), last use ${c.lastUsedAt ?? 'never'}`);
          }
        }
      });
    });

  const deliveries = program.command('deliveries').description('webhook deliveries');
  deliveries
    .command('list')
    .description('recent deliveries')
    .option('--failed', 'only parked (failed) deliveries')
    .option('--limit <n>', 'how many', '50')
    .addOption(configOption())
    .action(async (opts: { config?: string; failed?: boolean; limit: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const filter = opts.failed ? { status: 'failed' as const, limit: Number(opts.limit) } : { limit: Number(opts.limit) };
        const list = (await ctx.store.deliveries.list(filter)).map(deliveryView);
        if (list.length === 0) console.log(opts.failed ? 'no failed deliveries' : 'no deliveries');
        for (const d of list) {
          console.log(`${d.id}\t${d.status}\t${d.event}\t${d.account}\tattempts=${d.attempts}${d.lastError ? `\t${d.lastError}` : ''}`);
        }
      });
    });
  deliveries
    .command('retry [id]')
    .description('replay one delivery, or every failed one with --all-failed (the daemon picks them up within seconds)')
    .option('--all-failed')
    .addOption(configOption())
    .action(async (id: string | undefined, opts: { config?: string; allFailed?: boolean }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        if (opts.allFailed) {
          console.log(`${await ctx.store.deliveries.retryAllFailed(Date.now())} deliveries queued again`);
          return;
        }
        if (!id) throw new MailgateError('BAD_REQUEST', 'give a delivery id or --all-failed');
        if (!(await ctx.store.deliveries.retry(id, Date.now()))) throw new MailgateError('BAD_REQUEST', `no undelivered delivery ${id}`);
        console.log(`${id} queued again`);
      });
    });

  program
    .command('test <account>')
    .description('log in to the incoming and outgoing servers with the current token; report each side')
    .addOption(configOption())
    .action(async (account: string, opts: { config?: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const acc = ctx.config.accounts.find((a) => a.name === account);
        if (!acc) throw new MailgateError('BAD_REQUEST', `no account ${account}`);
        const metrics = createMetrics();
        const ingest = new IngestService({ store: ctx.store, config: () => ctx.config, metrics, inspect: inspectMessage, onQueued: () => undefined });
        const incoming = await createConnector(acc, { ingestor: ingest, acks: ingest, tokens: ctx.tokens, logger: ctx.logger, metrics }).test();
        console.log(`incoming (${acc.incoming.protocol} ${acc.incoming.host}:${acc.incoming.port}): ${incoming.ok ? 'ok' : `FAILED: ${incoming.error}${incoming.code ? ` [${incoming.code}]` : ''}`}`);
        if (!acc.outgoing) {
          console.log('outgoing: not configured');
          return incoming.ok ? 0 : 1;
        }
        const outgoing = await testSmtp(acc, ctx.tokens);
        console.log(`outgoing (smtp ${acc.outgoing.host}:${acc.outgoing.port}): ${outgoing.ok ? 'ok' : `FAILED: ${outgoing.error}${outgoing.code ? ` [${outgoing.code}]` : ''}`}`);
        return incoming.ok && outgoing.ok ? 0 : 1;
      });
    });
}
