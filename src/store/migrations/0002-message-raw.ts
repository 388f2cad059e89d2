/**
 * Raw messages move to their own table. SQLite rewrites a whole row,
 * overflow pages included, on every UPDATE: with the raw bytes in `messages`,
 * marking a message delivered or acknowledged rewrote its 2–60 KB body each
 * time (a quarter of the daemon's CPU in the ingest profile).
 */
export const sql = `
CREATE TABLE message_raw (
  id   TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  raw  BLOB NOT NULL
);
INSERT INTO message_raw (id, raw) SELECT id, raw FROM messages;
ALTER TABLE messages DROP COLUMN raw;
`;
