import type { Command, Option } from 'commander';
import { MailgateError } from '../errors.js';
import { createConnector } from '../incoming/factory.js';
import { IngestService } from '../incoming/ingest.js';
import { createMetrics } from '../metrics.js';
import { testSmtp } from '../outgoing/smtp.js';
import { inspectMessage } from '../parse/auto-submitted.js';
import { formatGuide, googleDelegationGuide, microsoftAppOnlyGuide } from '../oauth/setup-guides.js';
import { configPathFrom } from './common.js';
import { withContext, type CliContext } from './context.js';

/**
 * `mailgate setup …`: the provider-side steps an admin does once, printed
 * with this credential's and mailbox's values (src/oauth/setup-guides.ts),
 * then a test login with mailgate's own token service.
 */

/** Logs in to each side of the account once, as `mailgate test` does; 0 when every configured side worked. */
async function testLogin(ctx: CliContext, accountName: string): Promise<number> {
  const acc = ctx.config.accounts.find((a) => a.name === accountName);
  if (!acc) throw new MailgateError('BAD_REQUEST', `no account ${accountName}`);
  const metrics = createMetrics();
  const ingest = new IngestService({ store: ctx.store, config: () => ctx.config, metrics, inspect: inspectMessage, onQueued: () => undefined });
  console.log(`Test login as ${acc.incoming.user} with mailgate's token…`);
  const incoming = await createConnector(acc, { ingestor: ingest, acks: ingest, tokens: ctx.tokens, logger: ctx.logger, metrics }).test();
  console.log(`incoming (${acc.incoming.protocol} ${acc.incoming.host}:${acc.incoming.port}): ${incoming.ok ? 'ok' : `FAILED: ${incoming.error}`}`);
  let ok = incoming.ok;
  if (acc.outgoing) {
    const outgoing = await testSmtp(acc, ctx.tokens);
    console.log(`outgoing (smtp ${acc.outgoing.host}:${acc.outgoing.port}): ${outgoing.ok ? 'ok' : `FAILED: ${outgoing.error}`}`);
    ok &&= outgoing.ok;
  }
  if (!ok) console.log('A login refused right after the setup may only mean the permissions have not reached the servers yet (minutes, up to an hour for Microsoft, up to 24 hours for Google). Run mailgate test ACCOUNT later.');
  return ok ? 0 : 1;
}

export function registerSetupCommands(program: Command, configOption: () => Option): void {
  const setup = program.command('setup').description('print the provider-side setup for a credential, then test a login');

  setup
    .command('microsoft-app-only')
    .description('the Exchange Online PowerShell that lets an app-only credential open a mailbox, then a test login')
    .requiredOption('--credential <name>', 'a credential with grant: client_credentials')
    .requiredOption('--account <name>', 'the account whose mailbox (its user) the app may open')
    .option('--object-id <id>', 'Object ID of the Enterprise application (Entra › Enterprise applications › the app › Overview)')
    .option('--organization <domain>', 'tenant for Connect-ExchangeOnline (default: the credential\'s tenant)')
    .option('--smtp-rbac', 'allow SMTP through an RBAC for Applications scope for this mailbox instead of the mailbox permission')
    .option('--no-test', 'print the steps only')
    .addOption(configOption())
    .action(async (opts: { config?: string; credential: string; account: string; objectId?: string; organization?: string; smtpRbac?: boolean; test: boolean }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const cred = await ctx.tokens.resolveCredential(opts.credential);
        if (cred.grant !== 'client_credentials') {
          throw new MailgateError('BAD_REQUEST', `credential ${cred.name} has grant ${cred.grant}; app-only access needs grant: client_credentials`);
        }
        const acc = ctx.tokens.account(opts.account);
        if (ctx.tokens.credentialNameOf(acc) !== cred.name) {
          throw new MailgateError('BAD_REQUEST', `account ${acc.name} does not log in with credential ${cred.name}`);
        }
        const tenant = opts.organization ?? cred.tenant;
        if (tenant === 'common' || tenant === 'organizations') {
          throw new MailgateError('BAD_REQUEST', `credential ${cred.name} has tenant ${tenant}; app-only tokens need your tenant ID or domain (set tenant, or pass --organization)`);
        }
        let guide;
        try {
          guide = microsoftAppOnlyGuide({
            credential: cred.name,
            clientId: cred.clientId,
            tenant,
            mailbox: acc.incoming.user,
            ...(opts.objectId ? { enterpriseObjectId: opts.objectId } : {}),
            cloud: cred.provider === 'microsoft-gcc-high' ? 'microsoft-gcc-high' : 'microsoft',
            protocols: { imap: acc.incoming.protocol === 'imap', pop3: acc.incoming.protocol === 'pop3', smtp: acc.outgoing !== undefined },
            smtpVia: opts.smtpRbac ? 'rbac' : 'mailbox-permission',
          });
        } catch (err) {
          throw new MailgateError('BAD_REQUEST', (err as Error).message);
        }
        console.log(formatGuide(guide));
        return opts.test ? testLogin(ctx, acc.name) : 0;
      });
    });

  setup
    .command('google-service-account')
    .description('the domain-wide delegation to grant in the Google Admin console, with the client ID and scopes to paste')
    .requiredOption('--credential <name>', 'a credential with grant: service_account')
    .option('--account <name>', 'then log in to this account as a test')
    .addOption(configOption())
    .action(async (opts: { config?: string; credential: string; account?: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const cred = await ctx.tokens.resolveCredential(opts.credential);
        const key = cred.serviceAccountKey;
        if (cred.grant !== 'service_account' || !key) {
          throw new MailgateError('BAD_REQUEST', `credential ${cred.name} is not a service account (grant: service_account with serviceAccountKeyFile)`);
        }
        const acc = opts.account ? ctx.tokens.account(opts.account) : null;
        const guide = googleDelegationGuide({
          credential: cred.name,
          clientId: key.clientId,
          clientEmail: key.clientEmail,
          scopes: cred.scopes,
          ...(acc ? { testMailbox: acc.incoming.user } : {}),
        });
        console.log(formatGuide(guide));
        return acc ? testLogin(ctx, acc.name) : 0;
      });
    });
}
