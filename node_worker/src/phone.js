// Phone numbers and WhatsApp ids (JIDs) for one-to-one chats.
const E164 = /^\+[1-9]\d{6,14}$/

export const isE164 = (value) => typeof value === 'string' && E164.test(value)
export const phoneToJid = (phone) => `${phone.slice(1)}@s.whatsapp.net`
export const jidToPhone = (jid) => {
  if (!jid || !jid.endsWith('@s.whatsapp.net')) return null
  return `+${jid.split('@')[0].split(':')[0]}`
}
