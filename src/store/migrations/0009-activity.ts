/**
 * The admin UI's account page (issue 20; src/store/activity.ts).
 * - `connection_history`: append-only state changes per account and side
 *   (connected, backoff, error, stopped; outgoing ok, error) with the error
 *   in plain words. At most CONNECTION_HISTORY_KEEP rows per account are
 *   kept: each insert prunes the older ones in its transaction. `id` is the
 *   insertion order.
 * - Indexes for reads of one account's last hours: messages by received
 *   time, deliveries by their last change (an acknowledgement or a failure
 *   is the row's last change), so a window never scans the account's whole
 *   history.
 */
export const sql = `
CREATE TABLE connection_history (
  id      INTEGER PRIMARY KEY,
  account TEXT NOT NULL,
  side    TEXT NOT NULL,      -- incoming | outgoing
  at      INTEGER NOT NULL,
  state   TEXT NOT NULL,
  error   TEXT
);
CREATE INDEX connection_history_account ON connection_history (account, id);
CREATE INDEX messages_account_received ON messages (account, received_at);
CREATE INDEX deliveries_account_changed ON deliveries (account, updated_at);
`;
