/**
 * Admin web UI sessions move from the daemon's memory to the database, so a
 * restart no longer signs every admin out and replicas can share them.
 *
 * Only the SHA-256 of the session id (the cookie value) is stored: a copy of
 * the database, or of a backup, does not hand out live sessions. The id is
 * 256 random bits, so an unsalted fast hash is enough (nothing to brute-force).
 *
 * The CSRF token is stored as is, not sealed: it only matters on a request
 * that already carries the session cookie, which cannot be derived from the
 * hash, so the token alone opens nothing. Sealing it would cost an AES-GCM
 * open on every page view for no gain.
 */
export const sql = `
CREATE TABLE admin_sessions (
  id_sha256  TEXT PRIMARY KEY,  -- lowercase hex SHA-256 of the cookie value
  csrf       TEXT NOT NULL,
  flash_json TEXT,              -- the message for the next page, if any
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
`;
