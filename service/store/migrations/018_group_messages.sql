-- Groups (issue 26): a contact's message in a group names the group; the row's phone_number, lid and chat_jid are
-- then the participant who sent it. Outbound group messages keep the group's jid as their recipient
-- (messages.phone_number), so that the outbox's per-recipient order holds per group. Portable SQL.
ALTER TABLE inbound_messages ADD COLUMN group_id TEXT;
CREATE INDEX inbound_group ON inbound_messages (account, group_id, seq);
