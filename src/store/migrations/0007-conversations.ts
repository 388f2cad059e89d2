/**
 * Conversations (issue 16). A message mailgate stored, received or sent
 * through the send API, keeps the `conversationId` it was given and the
 * normalised form of its Message-ID (parse/conversation.ts `messageIdKey`),
 * so that a reply naming it in In-Reply-To or References joins its
 * conversation (MessageRepo.conversationOf). Rows stored before this
 * migration have neither and are not found by that lookup.
 */
export const sql = `
ALTER TABLE messages ADD COLUMN conversation_id TEXT;
ALTER TABLE messages ADD COLUMN message_id_key TEXT;
CREATE INDEX messages_message_id_key ON messages (message_id_key) WHERE message_id_key IS NOT NULL;
ALTER TABLE outbox ADD COLUMN conversation_id TEXT;
ALTER TABLE outbox ADD COLUMN message_id_key TEXT;
CREATE INDEX outbox_message_id_key ON outbox (message_id_key) WHERE message_id_key IS NOT NULL;
`;
