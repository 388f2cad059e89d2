import { tooNewError } from '../schema-version.js';
import type { PgDb } from './db.js';

/**
 * PostgreSQL's own schema migrations. Append, never edit or reorder: the
 * position in this list (1-based) is the version recorded in
 * mailgate_schema. The first one starts at what SQLite reached after its
 * five (src/store/migrations), in PostgreSQL's types: times and UIDs are
 * bigint (ms since the epoch, UTC), sealed secrets and raw messages bytea,
 * JSON kept as text exactly as written (`*_json`).
 */
export const PG_MIGRATIONS: readonly { name: string; sql: string }[] = [
  {
    name: '0001-init',
    sql: `
CREATE TABLE meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE credentials (
  name              text PRIMARY KEY,
  provider          text NOT NULL,
  client_id         text NOT NULL,
  client_secret_enc bytea,
  settings_json     text NOT NULL DEFAULT '{}',
  created_at        bigint NOT NULL,
  updated_at        bigint NOT NULL
);

CREATE TABLE tokens (
  account                 text PRIMARY KEY,
  credential              text NOT NULL,
  refresh_token_enc       bytea,
  access_token_enc        bytea,
  access_expires_at       bigint,
  scope                   text,
  state                   text NOT NULL DEFAULT 'missing',
  last_refresh_at         bigint,
  refresh_token_issued_at bigint,
  last_error              text,
  updated_at              bigint NOT NULL
);

CREATE TABLE oauth_states (
  state             text PRIMARY KEY,
  account           text NOT NULL,
  credential        text NOT NULL,
  code_verifier_enc bytea NOT NULL,
  redirect_uri      text NOT NULL,
  created_at        bigint NOT NULL,
  expires_at        bigint NOT NULL,
  used_at           bigint
);

CREATE TABLE account_status (
  account         text NOT NULL,
  side            text NOT NULL,
  state           text NOT NULL,
  last_success_at bigint,
  last_poll_at    bigint,
  last_error      text,
  updated_at      bigint NOT NULL,
  PRIMARY KEY (account, side)
);

CREATE TABLE cursors (
  account      text NOT NULL,
  mailbox      text NOT NULL,
  uid_validity bigint NOT NULL,
  last_uid     bigint NOT NULL,
  updated_at   bigint NOT NULL,
  PRIMARY KEY (account, mailbox)
);

CREATE TABLE messages (
  id             text PRIMARY KEY,
  account        text NOT NULL,
  mailbox        text NOT NULL,
  uid            bigint,
  uid_validity   bigint,
  uidl           text,
  message_id     text,
  size           bigint NOT NULL,
  internal_date  bigint,
  received_at    bigint NOT NULL,
  auto_submitted boolean NOT NULL DEFAULT false,
  server_ack     text NOT NULL DEFAULT 'pending',
  ack_attempts   integer NOT NULL DEFAULT 0,
  ack_next_at    bigint,
  ack_error      text,
  not_downloaded text
);
CREATE INDEX messages_dedupe ON messages (account, message_id, size);
CREATE INDEX messages_ack ON messages (account, server_ack, received_at, id);

-- Raw bytes apart: an UPDATE of a message row never rewrites its body.
-- EXTERNAL: kept out of line uncompressed (mail is mostly compressed
-- already), so a chunked read (substring) fetches only its own pages.
CREATE TABLE message_raw (
  id  text PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  raw bytea NOT NULL
);
ALTER TABLE message_raw ALTER COLUMN raw SET STORAGE EXTERNAL;

CREATE TABLE deliveries (
  id               text PRIMARY KEY,
  account          text NOT NULL,
  webhook          text NOT NULL,
  event            text NOT NULL,
  message_ref      text REFERENCES messages (id),
  payload_json     text,
  status           text NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint NOT NULL,
  last_status      integer,
  last_error       text,
  response_excerpt text,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  delivered_at     bigint,
  render_failures  integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX deliveries_message ON deliveries (message_ref) WHERE message_ref IS NOT NULL;
CREATE INDEX deliveries_claim ON deliveries (webhook, status, next_attempt_at, created_at, id);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_changed ON deliveries (updated_at DESC, id DESC);

CREATE TABLE pop3_uidls (
  account     text NOT NULL,
  uidl        text NOT NULL,
  message_ref text,
  seen_at     bigint NOT NULL,
  PRIMARY KEY (account, uidl)
);

CREATE TABLE outbox (
  id              text PRIMARY KEY,
  account         text NOT NULL,
  idempotency_key text,
  request_json    text NOT NULL,
  status          text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  last_error      text,
  message_id      text,
  created_at      bigint NOT NULL,
  updated_at      bigint NOT NULL,
  sent_at         bigint
);
CREATE UNIQUE INDEX outbox_idempotency ON outbox (account, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, created_at);

CREATE TABLE admin_sessions (
  id_sha256  text PRIMARY KEY,
  csrf       text NOT NULL,
  flash_json text,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
`,
  },
  {
    // Several replicas (src/store/cluster.ts), the same tables as SQLite's 0006.
    name: '0002-cluster',
    sql: `
CREATE TABLE leases (
  account    text PRIMARY KEY,
  owner      text,
  epoch      bigint NOT NULL,
  expires_at bigint NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE nodes (
  name         text PRIMARY KEY,
  instance     text NOT NULL,
  started_at   bigint NOT NULL,
  last_seen_at bigint NOT NULL
);

CREATE TABLE locks (
  name       text PRIMARY KEY,
  owner      text NOT NULL,
  expires_at bigint NOT NULL
);

ALTER TABLE deliveries ADD COLUMN claim_owner text;
ALTER TABLE deliveries ADD COLUMN claim_until bigint;
ALTER TABLE tokens ADD COLUMN refresh_owner text;
ALTER TABLE tokens ADD COLUMN refresh_until bigint;
`,
  },
  {
    // Messages given as bytes (the SMTP relay) and conversations: SQLite's 0006 and 0007.
    name: '0003-outbox-raw-and-conversations',
    sql: `
ALTER TABLE outbox ADD COLUMN envelope_json text;
ALTER TABLE outbox ADD COLUMN raw_bytes bigint;
CREATE TABLE outbox_raw (
  id  text PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
  raw bytea NOT NULL
);
ALTER TABLE outbox_raw ALTER COLUMN raw SET STORAGE EXTERNAL;
ALTER TABLE messages ADD COLUMN conversation_id text;
ALTER TABLE messages ADD COLUMN message_id_key text;
CREATE INDEX messages_message_id_key ON messages (message_id_key) WHERE message_id_key IS NOT NULL;
ALTER TABLE outbox ADD COLUMN conversation_id text;
ALTER TABLE outbox ADD COLUMN message_id_key text;
CREATE INDEX outbox_message_id_key ON outbox (message_id_key) WHERE message_id_key IS NOT NULL;
`,
  },
  {
    // The admin UI's account page: SQLite's 0009 (store copy moves the identity on past the copied ids).
    name: '0004-activity',
    sql: `
CREATE TABLE connection_history (
  id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  account text NOT NULL,
  side    text NOT NULL,
  at      bigint NOT NULL,
  state   text NOT NULL,
  error   text
);
CREATE INDEX connection_history_account ON connection_history (account, id);
CREATE INDEX messages_account_received ON messages (account, received_at);
CREATE INDEX deliveries_account_changed ON deliveries (account, updated_at);
`,
  },
];

/** Every table mailgate keeps, in an order that satisfies the foreign keys (store copy writes in it). */
export const PG_TABLES = [
  'meta',
  'credentials',
  'tokens',
  'oauth_states',
  'account_status',
  'cursors',
  'messages',
  'message_raw',
  'deliveries',
  'pop3_uidls',
  'outbox',
  'outbox_raw',
  'admin_sessions',
  'leases',
  'nodes',
  'locks',
  'connection_history',
] as const;

/** Serialises migrations of replicas starting at once (any constant; "mgschema"). */
const MIGRATION_LOCK = 0x6d67736368656d61n;

/**
 * Applies pending migrations in one transaction, under an advisory lock so
 * that replicas starting together migrate once; refuses a newer database
 * with the same words as SQLite (DB_TOO_NEW).
 */
export async function migratePg(db: PgDb): Promise<{ from: number; to: number }> {
  const target = PG_MIGRATIONS.length;
  return db.tx(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
    await c.query(
      `CREATE TABLE IF NOT EXISTS mailgate_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`,
    );
    const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM mailgate_schema');
    const current = rows[0]?.v ?? 0;
    if (current > target) throw tooNewError(current, target);
    for (let v = current; v < target; v++) {
      const m = PG_MIGRATIONS[v];
      if (!m) continue;
      await c.query(m.sql);
      await c.query(
        'INSERT INTO mailgate_schema (version, name, applied_at) VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)',
        [v + 1, m.name],
      );
    }
    return { from: current, to: target };
  });
}
