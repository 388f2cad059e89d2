import { sql as init } from './0001-init.js';
import { sql as messageRaw } from './0002-message-raw.js';
import { sql as claimIndex } from './0003-deliveries-claim-index.js';
import { sql as adminSessions } from './0004-admin-sessions.js';
import { sql as failedBuilds } from './0005-failed-builds-and-oversize.js';
import { sql as outboxRaw } from './0006-outbox-raw.js';
import { sql as conversations } from './0007-conversations.js';
import { sql as cluster } from './0008-cluster.js';
import { sql as activity } from './0009-activity.js';

/**
 * Ordered schema migrations. Append, never edit or reorder: the position in
 * this list (1-based) is the schema version stored in the database.
 */
export const MIGRATIONS: readonly { name: string; sql: string }[] = [
  { name: '0001-init', sql: init },
  { name: '0002-message-raw', sql: messageRaw },
  { name: '0003-deliveries-claim-index', sql: claimIndex },
  { name: '0004-admin-sessions', sql: adminSessions },
  { name: '0005-failed-builds-and-oversize', sql: failedBuilds },
  { name: '0006-outbox-raw', sql: outboxRaw },
  { name: '0007-conversations', sql: conversations },
  { name: '0008-cluster', sql: cluster },
  { name: '0009-activity', sql: activity },
];
