/**
 * Several replicas (issue 15; src/store/cluster.ts). On SQLite one node
 * holds every lease, but the tables are the same as on PostgreSQL.
 * - `leases`: one per account: owner node (NULL once released), fencing
 *   epoch (only ever grows), expiry.
 * - `nodes`: membership with heartbeats; `instance` tells two processes
 *   given the same name apart.
 * - `locks`: named locks for work that must happen once (retention, …).
 * - `deliveries.claim_owner/claim_until`: a delivery claimed by one node
 *   while it posts it (DeliveryRepo.claimDue with a claim).
 * - `tokens.refresh_owner/refresh_until`: one refresh of a token at a time
 *   across nodes (TokenRepo.takeForRefresh).
 */
export const sql = `
CREATE TABLE leases (
  account    TEXT PRIMARY KEY,
  owner      TEXT,
  epoch      INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE nodes (
  name         TEXT PRIMARY KEY,
  instance     TEXT NOT NULL,
  started_at   INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL
);

CREATE TABLE locks (
  name       TEXT PRIMARY KEY,
  owner      TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);

ALTER TABLE deliveries ADD COLUMN claim_owner TEXT;
ALTER TABLE deliveries ADD COLUMN claim_until INTEGER;
ALTER TABLE tokens ADD COLUMN refresh_owner TEXT;
ALTER TABLE tokens ADD COLUMN refresh_until INTEGER;
`;
