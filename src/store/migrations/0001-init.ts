/**
 * Initial schema. Migrations are append-only: never edit or reorder a
 * migration that has shipped; add a new file and list it in index.ts.
 * Times are integer milliseconds since the epoch (UTC). Columns ending in
 * `_enc` hold AES-256-GCM envelopes (src/secrets/cipher.ts).
 */
export const sql = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- OAuth2 client credentials added at run time (CLI / admin UI). Credentials
-- from the YAML file are not copied here; they live in the loaded config.
CREATE TABLE credentials (
  name              TEXT PRIMARY KEY,
  provider          TEXT NOT NULL,
  client_id         TEXT NOT NULL,
  client_secret_enc BLOB,
  settings_json     TEXT NOT NULL DEFAULT '{}',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);

CREATE TABLE tokens (
  account                 TEXT PRIMARY KEY,
  credential              TEXT NOT NULL,
  refresh_token_enc       BLOB,
  access_token_enc        BLOB,
  access_expires_at       INTEGER,
  scope                   TEXT,
  state                   TEXT NOT NULL DEFAULT 'missing',  -- ok | reauth_required | missing
  last_refresh_at         INTEGER,
  refresh_token_issued_at INTEGER,
  last_error              TEXT,
  updated_at              INTEGER NOT NULL
);

CREATE TABLE oauth_states (
  state              TEXT PRIMARY KEY,
  account            TEXT NOT NULL,
  credential         TEXT NOT NULL,
  code_verifier_enc  BLOB NOT NULL,
  redirect_uri       TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  expires_at         INTEGER NOT NULL,
  used_at            INTEGER
);

-- Runtime status per account side, written by the daemon so that
-- \`mailgate status\` (another process) and other replicas can read it.
CREATE TABLE account_status (
  account         TEXT NOT NULL,
  side            TEXT NOT NULL,  -- incoming | outgoing
  state           TEXT NOT NULL,
  last_success_at INTEGER,
  last_poll_at    INTEGER,
  last_error      TEXT,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (account, side)
);

-- IMAP: last UID seen per mailbox, with the UIDVALIDITY it belongs to.
CREATE TABLE cursors (
  account      TEXT NOT NULL,
  mailbox      TEXT NOT NULL,
  uid_validity INTEGER NOT NULL,
  last_uid     INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (account, mailbox)
);

-- Every message taken from a server, raw bytes included, written in the same
-- transaction as its delivery row. The id is derived from where the message
-- came from, so a crash and re-fetch finds the same row (INSERT OR IGNORE).
CREATE TABLE messages (
  id             TEXT PRIMARY KEY,
  account        TEXT NOT NULL,
  mailbox        TEXT NOT NULL,
  uid            INTEGER,
  uid_validity   INTEGER,
  uidl           TEXT,
  message_id     TEXT,
  size           INTEGER NOT NULL,
  internal_date  INTEGER,
  raw            BLOB NOT NULL,
  received_at    INTEGER NOT NULL,
  auto_submitted INTEGER NOT NULL DEFAULT 0,   -- for the send loop guard
  -- afterDelivery on the mail server: pending until the webhook acked,
  -- then due -> done (or none when afterDelivery is none)
  server_ack       TEXT NOT NULL DEFAULT 'pending',  -- pending | due | done | none
  ack_attempts     INTEGER NOT NULL DEFAULT 0,
  ack_next_at      INTEGER,
  ack_error        TEXT
);
CREATE INDEX messages_dedupe ON messages (account, message_id, size);
CREATE INDEX messages_ack ON messages (account, server_ack);

CREATE TABLE deliveries (
  id               TEXT PRIMARY KEY,
  account          TEXT NOT NULL,
  webhook          TEXT NOT NULL,
  event            TEXT NOT NULL,
  message_ref      TEXT REFERENCES messages(id),
  payload_json     TEXT,             -- for events not built from a message
  status           TEXT NOT NULL,    -- pending | delivered | failed
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  last_status      INTEGER,
  last_error       TEXT,
  response_excerpt TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  delivered_at     INTEGER
);
CREATE UNIQUE INDEX deliveries_message ON deliveries (message_ref) WHERE message_ref IS NOT NULL;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);

-- POP3 has no flags: the UIDLs we have taken, per account.
CREATE TABLE pop3_uidls (
  account     TEXT NOT NULL,
  uidl        TEXT NOT NULL,
  message_ref TEXT,
  seen_at     INTEGER NOT NULL,
  PRIMARY KEY (account, uidl)
);

CREATE TABLE outbox (
  id               TEXT PRIMARY KEY,
  account          TEXT NOT NULL,
  idempotency_key  TEXT,
  request_json     TEXT NOT NULL,
  status           TEXT NOT NULL,   -- queued | sending | sent | failed
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  last_error       TEXT,
  message_id       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  sent_at          INTEGER
);
CREATE UNIQUE INDEX outbox_idempotency ON outbox (account, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
`;
