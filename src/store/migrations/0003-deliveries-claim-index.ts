/**
 * The delivery worker claims due rows per webhook in (next_attempt_at,
 * created_at, id) order many times a second while a backlog drains; this
 * index serves that query without sorting the backlog on every claim.
 */
export const sql = `
CREATE INDEX deliveries_claim ON deliveries (webhook, status, next_attempt_at, created_at, id);
`;
