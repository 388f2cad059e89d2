#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { checkConfigFile } from './config/check.js';
import { storedCredentialNames } from './store/open.js';
import { configPathFrom, EXIT_BAD_INPUT, EXIT_OK } from './cli/common.js';
import { registerCredentialsCommands } from './cli/credentials.js';
import { registerOperationCommands } from './cli/operations.js';
import { serveCommand } from './cli/serve.js';
import { registerSetupCommands } from './cli/setup.js';

/** The version in package.json (dist/cli.js sits next to it, in the repository and in the image). */
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const program = new Command();
program
  .name('mailgate')
  .version(VERSION, '-V, --version', 'print the version of mailgate')
  .description('Self-hosted mail gateway: OAuth2 IMAP/POP3 to signed webhooks, SMTP sending')
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander's own usage errors are bad input (exit 2), help/version are 0.
    process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT);
  });

const configOption = () => new Option('-c, --config <file>', 'config file (default: $MAILGATE_CONFIG, else config/mailgate.yaml)');

program
  .command('serve')
  .description('run the daemon')
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    // Exit explicitly: a stray timer in a library must not keep a stopped daemon alive.
    process.exit(await serveCommand(configPathFrom(opts.config, process.env)));
  });

const config = program.command('config').description('configuration');
config
  .command('check')
  .description('validate the config; print every error as file:line:col message')
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    const path = configPathFrom(opts.config, process.env);
    const result = await checkConfigFile(path, process.env, storedCredentialNames);
    for (const line of result.overrides) console.log(line);
    for (const line of result.warnings) console.error(line);
    if (result.ok) {
      console.log(`${path}: ok${result.warnings.length ? ` (${result.warnings.length} warning${result.warnings.length > 1 ? 's' : ''})` : ''}`);
      process.exitCode = EXIT_OK;
    } else {
      for (const line of result.issues) console.error(line);
      process.exitCode = EXIT_BAD_INPUT;
    }
  });

const store = program.command('store').description('the database');
store
  .command('copy')
  .description('copy a stopped SQLite dataDir into an empty PostgreSQL database (secrets stay encrypted)')
  .requiredOption('--to <url>', 'the PostgreSQL database: postgres://user:password@host:5432/db')
  .addOption(configOption())
  .action(async (opts: { config?: string; to: string }) => {
    const { storeCopy } = await import('./cli/store-copy.js');
    const { reportFailure } = await import('./cli/common.js');
    try {
      await storeCopy({ configPath: configPathFrom(opts.config, process.env), to: opts.to });
      process.exitCode = EXIT_OK;
    } catch (err) {
      process.exitCode = reportFailure(err);
    }
  });

registerCredentialsCommands(program, configOption);
registerOperationCommands(program, configOption);
registerSetupCommands(program, configOption);

await program.parseAsync(process.argv);
