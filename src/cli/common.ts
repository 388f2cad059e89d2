import { resolve } from 'node:path';
import { explainSystemError, fileTarget, MailgateError } from '../errors.js';
import { ConfigError } from '../config/load.js';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_BAD_INPUT = 2;

export const DEFAULT_CONFIG_PATH = 'config/mailgate.yaml';

/** `--config F`, else $MAILGATE_CONFIG, else config/mailgate.yaml (relative to the working directory). */
export function configPathFrom(option: string | undefined, env: Record<string, string | undefined>): string {
  return option ?? env.MAILGATE_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export function absolute(p: string): string {
  return resolve(p);
}

/** Prints a failure the way admins read it and returns the exit code. */
export function reportFailure(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const i of err.issues) console.error(`${i.file}:${i.line}:${i.col} ${i.message}`);
    return EXIT_BAD_INPUT;
  }
  if (err instanceof MailgateError) {
    const systemCode = err.details?.systemCode;
    console.error(`mailgate: ${err.message} [${err.code}${typeof systemCode === 'string' ? ` ${systemCode}` : ''}]`);
    return err.code === 'BAD_REQUEST' || err.code === 'CONFIG_INVALID' ? EXIT_BAD_INPUT : EXIT_RUNTIME;
  }
  // A file or socket failure (a file given on the command line, the daemon's port) in plain words, its code apart.
  const plain = explainSystemError(err, fileTarget(err, 'a file or connection mailgate needed'));
  if (plain) {
    console.error(`mailgate: ${plain.message} [${plain.code}]`);
    return plain.code === 'ENOENT' || plain.code === 'EISDIR' || plain.code === 'EACCES' ? EXIT_BAD_INPUT : EXIT_RUNTIME;
  }
  console.error(`mailgate: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT_RUNTIME;
}
