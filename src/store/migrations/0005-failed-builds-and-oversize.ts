/**
 * Hostile and huge mail (issue 13).
 * - `deliveries.render_failures`: failed attempts to build a message's
 *   webhook body (a parse thread that died or overran its deadline). Counted
 *   apart from webhook attempts: after a few, the message is reported as
 *   message.failed instead of being parsed again and again.
 * - `messages.not_downloaded`: why the body was not fetched ('too_large':
 *   over maxMessageSize, known from RFC822.SIZE / LIST). Such a message has
 *   only its header block in message_raw, is reported once as
 *   message.failed and is never acted on on the server (server_ack 'none').
 */
export const sql = `
ALTER TABLE deliveries ADD COLUMN render_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN not_downloaded TEXT;
`;
