-- A message the gateway holds from the phone's history and then sees live (or the other way round) is one message
-- (issue 27): both lookups go by WhatsApp's id within the account, whichever jid (phone or LID) named its chat each
-- time, so that the history's side needs its own index too (history_source starts with chat_jid).
CREATE INDEX history_wa_id ON history_messages (account, wa_id);
