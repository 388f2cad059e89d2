import { sql as init } from './0001-init.js';
import { sql as messageRaw } from './0002-message-raw.js';

/**
 * Ordered schema migrations. Append, never edit or reorder: the position in
 * this list (1-based) is the schema version stored in the database.
 */
export const MIGRATIONS: readonly { name: string; sql: string }[] = [
  { name: '0001-init', sql: init },
  { name: '0002-message-raw', sql: messageRaw },
];
