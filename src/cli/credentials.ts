import { readFileSync } from 'node:fs';
import type { Command} from 'commander';
import { Option } from 'commander';
import type { AuthConfig } from '../config/types.js';
import { explainSystemError, MailgateError } from '../errors.js';
import { saveCredential, validateCredential, type CredentialInput } from '../oauth/credential-input.js';
import { redirectUriFor } from '../oauth/flows.js';
import { configPathFrom } from './common.js';
import { withContext } from './context.js';
import { promptHidden, PromptCancelled, type TtyInput } from './secret-prompt.js';

const PROVIDERS = ['google', 'microsoft', 'microsoft-gcc-high', 'custom'];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * Whether a credential can work without a client secret: a Microsoft or
 * custom app registered as a public client (PKCE, device code) can; Google's
 * token endpoint and the client_credentials grant always need one.
 */
export function secretRequiredFor(provider: string, grant: string | undefined): string | null {
  if ((grant ?? 'authorization_code') === 'client_credentials') return 'the client_credentials grant authenticates with the client secret';
  if (provider === 'google') return "Google's token endpoint needs the client secret of the OAuth client";
  return null;
}

/** Credentials are managed even while an account names one not added yet. */
const CREDENTIAL_COMMANDS = { credentialsMayBeMissing: true };

export function registerCredentialsCommands(program: Command, configOption: () => Option): void {
  const cmd = program.command('credentials').description('OAuth2 client credentials kept in the database (secret encrypted)');

  cmd
    .command('list')
    .description('list credentials from the config and the database, with the redirect URL to register')
    .addOption(configOption())
    .action(async (opts: { config?: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        const redirect = redirectUriFor(ctx.config.server.publicUrl);
        const rows = [
          ...ctx.config.credentials.map((c) => ({ name: c.name, provider: c.provider, clientId: c.clientId, grant: c.grant, source: 'config' })),
          ...(await ctx.store.credentials.list())
            .filter((c) => !ctx.config.credentials.some((y) => y.name === c.name))
            .map((c) => ({ name: c.name, provider: c.provider, clientId: c.clientId, grant: String(c.settings.grant ?? 'authorization_code'), source: 'database' })),
        ];
        console.log(`Redirect URL to register with the provider: ${redirect}`);
        if (rows.length === 0) console.log('(no credentials)');
        for (const r of rows) console.log(`${r.name}\t${r.provider}\t${r.clientId}\t${r.grant}\t${r.source}`);
      }, CREDENTIAL_COMMANDS);
    });

  cmd
    .command('add')
    .description('add or replace a credential in the database')
    .requiredOption('--name <name>')
    .addOption(new Option('--provider <provider>').choices(PROVIDERS).makeOptionMandatory())
    .option('--client-id <id>', 'the OAuth client ID (not needed with --service-account-key-file: the key has it)')
    .option('--client-secret-file <file>', 'read the client secret from this file')
    .option('--service-account-key-file <file>', 'grant service_account: the Google service-account JSON key (stored encrypted)')
    .option('--client-secret-expires-at <date>', 'when the client secret expires, e.g. 2027-06-30 (warnings 30 and 7 days before)')
    .option('--testing-app', 'Google: the OAuth app is in "Testing" status (refresh tokens die after 7 days)')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option('--tenant <tenant>', 'Microsoft tenant (default common)')
    .option('--authorization-endpoint <url>')
    .option('--token-endpoint <url>')
    .option('--device-authorization-endpoint <url>')
    .option('--scopes <scopes>', 'space-separated scopes (custom providers)')
    .addOption(new Option('--grant <grant>').choices(['authorization_code', 'client_credentials', 'service_account']))
    .addOption(configOption())
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      process.exitCode = await withContext(configPathFrom(opts.config as string | undefined, process.env), async (ctx) => {
        const name = String(opts.name);
        const str = (k: string) => (typeof opts[k] === 'string' ? opts[k] : undefined);
        const keyFile = str('serviceAccountKeyFile');
        let serviceAccountKeyJson: string | undefined;
        if (keyFile !== undefined) {
          try {
            serviceAccountKeyJson = readFileSync(keyFile, 'utf8');
          } catch (err) {
            throw new MailgateError('BAD_REQUEST', `cannot read --service-account-key-file: ${explainSystemError(err, `the file ${keyFile}`)?.message ?? (err as Error).message}`);
          }
          if (opts.clientSecretFile || opts.clientSecretStdin) throw new MailgateError('BAD_REQUEST', 'a service account signs with its key; give no client secret');
        }
        const grant = str('grant') ?? (keyFile !== undefined ? 'service_account' : undefined);
        const input: CredentialInput = {
          name,
          provider: String(opts.provider),
          clientId: str('clientId') ?? '',
          ...(serviceAccountKeyJson !== undefined ? { serviceAccountKeyJson } : {}),
          ...(str('clientSecretExpiresAt') !== undefined ? { clientSecretExpiresAt: str('clientSecretExpiresAt') } : {}),
          ...(opts.testingApp ? { testingApp: true } : {}),
          tenant: str('tenant'),
          authorizationEndpoint: str('authorizationEndpoint'),
          tokenEndpoint: str('tokenEndpoint'),
          deviceAuthorizationEndpoint: str('deviceAuthorizationEndpoint'),
          grant,
          scopes: str('scopes')?.split(/\s+/).filter(Boolean),
        };
        // The same validation (and save path) as the admin UI and the YAML check; its problems come before the secret's.
        const invalid = Object.keys(validateCredential(input, ctx.config)).length > 0;
        if (invalid) await saveCredential(ctx.store, ctx.config, { ...input, clientSecret: null });
        // The secret never comes as a plain flag: it would sit in shell history and `ps`.
        let secret: string | null = null;
        const stdin = process.stdin as TtyInput;
        const needs = serviceAccountKeyJson !== undefined ? null : secretRequiredFor(input.provider, input.grant);
        if (opts.clientSecretFile) secret = readFileSync(String(opts.clientSecretFile), 'utf8').replace(/\r?\n$/, '');
        else if (stdin.isTTY && (opts.clientSecretStdin || needs)) {
          // Typed on a terminal: asked for, never echoed (nor kept in shell history).
          try {
            secret = await promptHidden(`Client secret for ${name} (not shown): `, stdin, process.stderr);
          } catch (err) {
            if (err instanceof PromptCancelled) throw new MailgateError('BAD_REQUEST', 'cancelled; nothing was saved');
            throw err;
          }
        } else if (opts.clientSecretStdin) secret = await readStdin();
        const given = opts.clientSecretFile ? `the file ${String(opts.clientSecretFile)}` : stdin.isTTY ? 'the prompt' : 'standard input';
        if (secret !== null && secret.trim() === '') {
          const hint = needs ? ` (${needs})` : ' (leave out --client-secret-file/--client-secret-stdin for a public client without a secret)';
          throw new MailgateError('BAD_REQUEST', `the client secret from ${given} is empty; nothing was saved${hint}`);
        }
        if (secret === null && needs) {
          throw new MailgateError('BAD_REQUEST', `credential ${name} needs a client secret: ${needs}; give it with --client-secret-file F or --client-secret-stdin (asked without echo on a terminal); nothing was saved`);
        }
        const saved = await saveCredential(ctx.store, ctx.config, { ...input, clientSecret: secret });
        if (serviceAccountKeyJson !== undefined) {
          console.log(`credential ${name} saved (service-account key encrypted; client ID ${saved.clientId})`);
          console.log(`Grant domain-wide delegation next: mailgate setup google-service-account --credential ${name}`);
          return;
        }
        console.log(`credential ${name} saved${secret ? ' (secret encrypted)' : ' (no secret)'}`);
        console.log(`Redirect URL to register with the provider: ${redirectUriFor(ctx.config.server.publicUrl)}`);
      }, CREDENTIAL_COMMANDS);
    });

  cmd
    .command('remove <name>')
    .description('remove a credential from the database (refused while accounts in the config use it, unless --force)')
    .option('--force', 'remove it even though accounts use it (they stop working, and the config no longer loads)')
    .addOption(configOption())
    .action(async (name: string, opts: { config?: string; force?: boolean }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        if (!(await ctx.store.credentials.get(name))) throw new MailgateError('BAD_REQUEST', `no credential ${name} in the database`);
        const uses = (auth: AuthConfig | undefined) => auth !== undefined && auth.method !== 'password' && auth.credential === name;
        const users = ctx.config.accounts.filter((a) => uses(a.incoming.auth) || uses(a.outgoing?.auth)).map((a) => a.name);
        if (users.length > 0 && !opts.force) {
          throw new MailgateError(
            'BAD_REQUEST',
            `credential ${name} is used by account${users.length > 1 ? 's' : ''} ${users.join(', ')} in ${ctx.config.configPath}; nothing was removed. Point those accounts at another credential first, or use --force (then they cannot log in, and the config does not load until they are changed)`,
          );
        }
        if (users.length > 0) {
          console.error(`warning: removing credential ${name}, which account${users.length > 1 ? 's' : ''} ${users.join(', ')} still use${users.length > 1 ? '' : 's'}: they cannot log in any more, and status, reloads and the next start refuse the config until they name another credential`);
        }
        await ctx.store.credentials.remove(name);
        console.log(`credential ${name} removed`);
      }, CREDENTIAL_COMMANDS);
    });
}
