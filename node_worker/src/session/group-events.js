// A group's changes as journal events (issue 26): WhatsApp tells every member's devices of a change with a
// `w:gp2` notification (participants added, removed, promoted, demoted, left; a new subject or description; a
// group created with the account in it). Baileys turns it into groups.update / group-participants.update, but only
// through its event buffer and after it acked the notification, so a crash in between lost the change. The
// beforeNotificationAck hook (patches/baileys+7.0.0-rc14+006+notification-before-ack.patch) hands the node over
// before the ack instead, and each change is journaled from it (the node's own fields, read as Baileys'
// handleGroupNotification reads them) before WhatsApp may forget it; a redelivered notification is the same event.
//   group.participants {group_id, action: add|remove|promote|demote|leave|create, participants: [{phone_number, lid}],
//                       by: {phone_number, lid}|null, timestamp}        (create: with the group's subject)
//   group.updated      {group_id, subject? | description? | announce? | restrict?, by, timestamp}
import { getAllBinaryNodeChildren, getBinaryNodeChild, getBinaryNodeChildren, isJidGroup, jidDecode, WAJIDDomains } from 'baileys'

const PARTICIPANT_ACTIONS = new Set(['add', 'remove', 'promote', 'demote', 'leave'])
const userOf = (jid) => jidDecode(jid ?? '')?.user ?? null
// Our sender key's name in the key store for `group` as `jid` (PN or LID) sends (Baileys' jidToSignalSenderKeyName:
// "<group>::<user, LID users suffixed _1>::<device>").
const senderKeyName = (group, jid) => {
  const { user, device, domainType } = jidDecode(jid)
  return `${group}::${domainType !== WAJIDDomains.WHATSAPP ? `${user}_${domainType}` : user}::${device || 0}`
}

export class GroupEvents {
  constructor (session) {
    this.session = session
  }

  // beforeNotificationAck: every notification; only a group's (w:gp2) is an event. A failed write ends the worker
  // (mustPersist) before the ack, and WhatsApp delivers the notification again; a change this code cannot read is
  // logged and skipped (ending the worker on it would only bring the same notification back, for ever).
  async onNotificationNode (node) {
    if (node?.attrs?.type !== 'w:gp2' || !isJidGroup(node.attrs.from)) return
    const s = this.session
    const group = node.attrs.from
    s.groups.metadata.forget(group) // whatever changed, the next send asks who is in the group now
    const changes = getAllBinaryNodeChildren(node)
    for (const [index, child] of changes.entries()) {
      let change
      try {
        change = await this.changeOf(node, child)
      } catch (err) {
        s.log.warn({ err, group_id: group, tag: child?.tag ?? null }, 'group.notification_unreadable')
        continue
      }
      if (!change) {
        s.log.debug({ group_id: group, tag: child.tag }, 'group.notification_ignored')
        continue
      }
      if (change.rotate) await this.rotateSenderKey(group)
      // one notification, one id: a redelivery (the ack was lost) is the same event
      await s.mustPersist(this.add(change.type, change.event, `gp2:${group}:${node.attrs.id}:${index}`, change.logged))
    }
  }

  // {type, event, logged, rotate} of one change of a w:gp2 notification, or null for a change that is no event.
  async changeOf (node, child) {
    const s = this.session
    const by = node.attrs.participant ? await s.groups.person(node.attrs.participant, node.attrs.participant_pn ?? null) : null
    const base = { group_id: node.attrs.from, by, timestamp: Number(node.attrs.t ?? 0) || 0 }
    if (child.tag === 'create') return this.created(child, base)
    if (PARTICIPANT_ACTIONS.has(child.tag)) {
      const nodes = getBinaryNodeChildren(child, 'participant')
      const participants = await Promise.all(nodes.map((n) => s.groups.person(n.attrs.jid, n.attrs.phone_number ?? n.attrs.lid ?? null)))
      // someone removing themselves left (as Baileys reads it)
      const self = nodes.length === 1 && [node.attrs.participant, node.attrs.participant_pn].some((j) => j && userOf(j) === userOf(nodes[0].attrs.jid))
      const action = child.tag === 'remove' && self ? 'leave' : child.tag
      return {
        type: 'group.participants',
        event: { ...base, action, participants },
        logged: { action, participants: participants.length },
        rotate: action === 'remove' || action === 'leave'
      }
    }
    const fields = this.changed(child)
    return fields ? { type: 'group.updated', event: { ...base, ...fields }, logged: { fields: Object.keys(fields) } } : null
  }

  // Someone left or was removed: our next message to the group goes with a new sender key, distributed afresh to
  // who is in it now, as WhatsApp's apps do (its security whitepaper: members clear their sender key when one
  // leaves), so that a former member's copy of our key opens nothing we send later. Baileys keeps the key for good
  // otherwise. Taken under the lock sends encrypt under (relayMessage's transaction on our id).
  async rotateSenderKey (group) {
    const s = this.session
    const keys = s.sock?.authState?.keys
    const me = s.store?.state.creds.me
    if (!keys || !me?.id) return
    const names = [me.id, me.lid].filter(Boolean).map((jid) => senderKeyName(group, jid))
    try {
      await keys.transaction(async () => {
        await keys.set({ 'sender-key': Object.fromEntries(names.map((n) => [n, null])), 'sender-key-memory': { [group]: null } })
      }, me.id)
      s.log.info({ group_id: group }, 'group.sender_key_rotated')
    } catch (err) {
      // the old key stays (what Baileys alone does); the server no longer sends the group's messages to the removed
      s.log.warn({ err, group_id: group }, 'group.sender_key_rotation_failed')
    }
  }

  // A group created with the account in it: who is in it, and its subject.
  async created (child, base) {
    const s = this.session
    const group = getBinaryNodeChild(child, 'group')
    const nodes = getBinaryNodeChildren(group, 'participant')
    const participants = await Promise.all(nodes.map((n) => s.groups.person(n.attrs.jid, n.attrs.phone_number ?? n.attrs.lid ?? null)))
    const event = { ...base, action: 'create', participants, subject: group?.attrs.subject ?? null }
    return { type: 'group.participants', event, logged: { action: 'create', participants: participants.length } }
  }

  // The fields a settings change sets: never logged (a subject or description is the members' text).
  changed (child) {
    switch (child.tag) {
      case 'subject': return { subject: child.attrs.subject ?? null }
      case 'description': {
        const body = getBinaryNodeChild(child, 'body')?.content
        return { description: body ? Buffer.from(body).toString('utf8') : null }
      }
      case 'announcement': case 'not_announcement': return { announce: child.tag === 'announcement' }
      case 'locked': case 'unlocked': return { restrict: child.tag === 'locked' }
      default: return null
    }
  }

  async add (type, event, eventId, logged) {
    const s = this.session
    const { event: recorded, added } = await s.journal.add(type, event, eventId)
    if (added) s.log.info({ group_id: event.group_id, by: event.by?.phone_number ?? null, ...logged }, type)
    return recorded
  }
}
