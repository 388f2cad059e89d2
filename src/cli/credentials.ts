import { readFileSync } from 'node:fs';
import type { Command} from 'commander';
import { Option } from 'commander';
import { MailgateError } from '../errors.js';
import { saveCredential } from '../oauth/credential-input.js';
import { redirectUriFor } from '../oauth/flows.js';
import { configPathFrom } from './common.js';
import { withContext } from './context.js';

const PROVIDERS = ['google', 'microsoft', 'microsoft-gcc-high', 'custom'];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
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
        // The secret never comes as a plain flag: it would sit in shell history and `ps`.
        let secret: string | null = null;
        if (opts.clientSecretFile) secret = readFileSync(String(opts.clientSecretFile), 'utf8').replace(/\r?\n$/, '');
        else if (opts.clientSecretStdin) secret = await readStdin();
        const str = (k: string) => (typeof opts[k] === 'string' ? opts[k] : undefined);
        const keyFile = str('serviceAccountKeyFile');
        let serviceAccountKeyJson: string | undefined;
        if (keyFile !== undefined) {
          try {
            serviceAccountKeyJson = readFileSync(keyFile, 'utf8');
          } catch (err) {
            throw new MailgateError('BAD_REQUEST', `cannot read --service-account-key-file ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
          if (secret !== null) throw new MailgateError('BAD_REQUEST', 'a service account signs with its key; give no client secret');
        }
        const grant = str('grant') ?? (keyFile !== undefined ? 'service_account' : undefined);
        // The same validation (and save path) as the admin UI and the YAML check.
        const saved = await saveCredential(ctx.store, ctx.config, {
          name,
          provider: String(opts.provider),
          clientId: str('clientId') ?? '',
          clientSecret: secret,
          ...(serviceAccountKeyJson !== undefined ? { serviceAccountKeyJson } : {}),
          ...(str('clientSecretExpiresAt') !== undefined ? { clientSecretExpiresAt: str('clientSecretExpiresAt') } : {}),
          ...(opts.testingApp ? { testingApp: true } : {}),
          tenant: str('tenant'),
          authorizationEndpoint: str('authorizationEndpoint'),
          tokenEndpoint: str('tokenEndpoint'),
          deviceAuthorizationEndpoint: str('deviceAuthorizationEndpoint'),
          grant,
          scopes: str('scopes')?.split(/\s+/).filter(Boolean),
        });
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
    .description('remove a credential from the database')
    .addOption(configOption())
    .action(async (name: string, opts: { config?: string }) => {
      process.exitCode = await withContext(configPathFrom(opts.config, process.env), async (ctx) => {
        if (!(await ctx.store.credentials.remove(name))) throw new MailgateError('BAD_REQUEST', `no credential ${name} in the database`);
        console.log(`credential ${name} removed`);
      }, CREDENTIAL_COMMANDS);
    });
}
