import { MailgateError } from '../errors.js';

/** The one refusal of a database whose schema is newer than this mailgate, in the same words on every backend. */
export function tooNewError(current: number, target: number): MailgateError {
  return new MailgateError(
    'DB_TOO_NEW',
    `database schema version ${current} is newer than this mailgate (knows ${target}); run a newer mailgate or restore a backup`,
  );
}
