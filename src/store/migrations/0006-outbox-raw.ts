/**
 * Messages given as bytes (the SMTP relay, issue 19). The outbox row gets
 * the envelope (`envelope_json`: {"from","to"}) and the size; the bytes live
 * in their own table, as message_raw does, so that updating a row's status
 * never rewrites a message of up to 25 MB. Rows of send requests have NULL
 * in both columns and no outbox_raw row.
 */
export const sql = `
ALTER TABLE outbox ADD COLUMN envelope_json TEXT;
ALTER TABLE outbox ADD COLUMN raw_bytes INTEGER;
CREATE TABLE outbox_raw (
  id   TEXT PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
  raw  BLOB NOT NULL
);
`;
