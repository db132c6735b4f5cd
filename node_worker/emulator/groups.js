// Groups, the server's side: state (saved with the state file), the `w:g2` iqs as Baileys' Socket/groups.js
// and whatsmeow's group.go send them, and the `w:gp2` notifications every member's linked devices get.
// Message fan-out and the emulated phones as members are in group-messaging.js.
//
// Shapes (a PN-addressed group, `addressing_mode="pn"`: participants by phone number with their `lid`; a
// LID-addressed one, WA_EMULATOR_GROUP_ADDRESSING=lid, as WhatsApp makes new groups: by LID with `phone_number`):
//   <group id="120363…" creator creation subject s_t s_o size addressing_mode><participant jid lid type?/>…
//     <description id participant t><body/></description>? <locked/>? <announcement/>?</group>
// Errors as WhatsApp answers them (whatsmeow's errors.go names them): 404 item-not-found (no such group),
// 403 forbidden (not a participant), 401 not-authorized (admin only), 406 not-acceptable (an invite code
// that never existed), 410 gone (a revoked one), 409 conflict (a description edit on a stale `prev`),
// 419 resource-limit (more than GROUP_LIMIT participants). Per-participant results of add/remove/promote/
// demote: no error attr = 200, 403 (privacy refuses group adds; with <add_request code expiration>),
// 404 (not on WhatsApp), 409 (already a participant / not one).
import { randomBytes, randomInt } from 'node:crypto'
import { child, childrenByTag, bytesOf, unixNow, jidDecode } from './wa.js'
import { randomId } from './crypto.js'
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'

export const GROUP_LIMIT = 1024 // participants, the creator included (WhatsApp's limit)
const INVITE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const PARTICIPANT_ACTIONS = ['add', 'remove', 'promote', 'demote']
const SETTINGS = { locked: ['restrict', true], unlocked: ['restrict', false], announcement: ['announce', true], not_announcement: ['announce', false] }

const safeDecode = (jid) => {
  try { return jid ? jidDecode(jid) : undefined } catch { return undefined }
}
const inviteCode = () => Array.from(randomBytes(22), (b) => INVITE_ALPHABET[b % INVITE_ALPHABET.length]).join('')
const iqError = (code, text) => Object.assign(new Error(text), { iqCode: code, iqText: text })

export const groupJid = (g) => `${g.id}@g.us`
/** how group `g` names a user (or one of its devices): by phone number in a PN group, by LID in a LID one */
export const memberJid = (g, user, deviceId = 0) => {
  const [base, server] = g?.addressing === 'lid' ? [user.lid, 'lid'] : [user.phone, 's.whatsapp.net']
  return deviceId ? `${base}:${deviceId}@${server}` : `${base}@${server}`
}
/** the attribute naming the other form of a sender (participant_pn in a LID group, participant_lid in a PN one) */
export const altAttrs = (g, user, prefix = 'participant') => (g?.addressing === 'lid' ? { [`${prefix}_pn`]: user.jid } : { [`${prefix}_lid`]: user.lidJid })

export class Groups {
  constructor (emu) {
    this.emu = emu
    this.groups = new Map() // id (the jid's user part) -> group
    this.byInvite = new Map() // current invite code -> id
    this.revoked = new Map() // revoked invite code -> id (410 gone, not 406)
  }

  get dir () { return this.emu.directory }

  load (list) {
    for (const g of list || []) {
      this.groups.set(g.id, g)
      this.byInvite.set(g.inviteCode, g.id)
      for (const c of g.revokedCodes || []) this.revoked.set(c, g.id)
    }
  }

  toJSON () { return [...this.groups.values()] }

  /** the group a `…@g.us` jid names, or undefined */
  byJid (jid) {
    const d = safeDecode(jid)
    return d?.server === 'g.us' ? this.groups.get(d.user) : undefined
  }

  isMember (g, user) { return !!user && Object.hasOwn(g.participants, user.phone) }
  isAdmin (g, user) { return !!g.participants[user?.phone]?.admin }
  members (g) { return Object.keys(g.participants).map((p) => this.dir.get(p)).filter(Boolean) }

  // ------------------------------------------------------------ iqs
  async handleIq (conn, iq) {
    if (iq.attrs.xmlns !== 'w:g2') return false
    if (!conn.user || !conn.device) {
      conn.errorResult(iq, 401, 'not-authorized')
      return true
    }
    try {
      const content = this.answer(conn, iq)
      conn.result(iq, content)
      this.emu.persist()
    } catch (err) {
      if (!err.iqCode) throw err
      conn.log.info('group.iq_refused', { child: iq.content?.[0]?.tag || null, code: err.iqCode })
      conn.errorResult(iq, err.iqCode, err.iqText)
    }
    return true
  }

  answer (conn, iq) {
    const first = Array.isArray(iq.content) ? iq.content[0] : undefined
    const type = iq.attrs.type
    const me = conn.user
    if (iq.attrs.to === '@g.us' || iq.attrs.to === 'g.us') {
      if (type === 'get' && first?.tag === 'participating') {
        const list = [...this.groups.values()].filter((g) => this.isMember(g, me))
        return [{ tag: 'groups', attrs: {}, content: list.map((g) => this.groupNode(g)) }]
      }
      if (type === 'set' && first?.tag === 'create') return [this.create(me, first)]
      if (type === 'set' && first?.tag === 'leave') return [this.leave(me, first)]
      if (first?.tag === 'invite' && first.attrs.code) {
        const g = this.byCode(first.attrs.code)
        if (type === 'get') return [this.groupNode(g)]
        this.join(me, g)
        return [{ tag: 'group', attrs: { jid: groupJid(g) } }]
      }
      throw iqError(400, 'bad-request')
    }
    const g = this.byJid(iq.attrs.to)
    if (!g) throw iqError(404, 'item-not-found')
    if (!this.isMember(g, me)) throw iqError(403, 'forbidden')
    const tag = first?.tag
    if (type === 'get' && tag === 'query') return [this.groupNode(g)]
    if (tag === 'invite') {
      if (!this.isAdmin(g, me)) throw iqError(401, 'not-authorized')
      if (type === 'set') this.revokeInvite(me, g)
      return [{ tag: 'invite', attrs: { code: g.inviteCode } }]
    }
    if (type !== 'set') throw iqError(400, 'bad-request')
    if (PARTICIPANT_ACTIONS.includes(tag)) return [this.changeParticipants(me, g, first)]
    if (tag === 'subject') return this.setSubject(me, g, first)
    if (tag === 'description') return this.setDescription(me, g, first)
    if (Object.hasOwn(SETTINGS, tag)) return this.setSetting(me, g, tag)
    throw iqError(501, 'feature-not-implemented')
  }

  byCode (code) {
    const id = this.byInvite.get(code)
    if (id && this.groups.get(id)) return this.groups.get(id)
    if (this.revoked.has(code)) throw iqError(410, 'gone')
    throw iqError(406, 'not-acceptable')
  }

  /** the user a participant jid names (PN or LID); undefined when it is no plausible number */
  userOf (jid) {
    const d = safeDecode(jid)
    if (!d?.user) return undefined
    if (d.server === 'lid') return this.dir.byLidUser(d.user)
    if (d.server === 's.whatsapp.net' && normalizePhone(d.user)) return this.dir.ensure(d.user) // contacts exist on first use
    return undefined
  }

  create (me, node) {
    const subject = String(node.attrs.subject || '').trim()
    if (!subject || subject.length > 100) throw iqError(406, 'not-acceptable')
    const requested = childrenByTag(node, 'participant').map((p) => p.attrs.jid)
    if (requested.length + 1 > GROUP_LIMIT) throw iqError(419, 'resource-limit')
    let id
    do { id = `120363${randomInt(10 ** 11, 10 ** 12 - 1)}${randomInt(100, 999)}` } while (this.groups.has(id))
    const t = unixNow()
    const g = {
      id, subject, subjectOwner: me.phone, subjectTime: t, creation: t, creator: me.phone, createKey: node.attrs.key || null,
      description: null, participants: { [me.phone]: { admin: 'superadmin' } }, inviteCode: inviteCode(), revokedCodes: [],
      restrict: false, announce: false, addressing: this.emu.settings.groupAddressing === 'lid' ? 'lid' : 'pn'
    }
    const refused = []
    for (const jid of requested) {
      const r = this.tryAdd(g, jid)
      if (r.error) refused.push(this.resultNode(jid, r.user, g, r.error))
    }
    this.groups.set(id, g)
    this.byInvite.set(g.inviteCode, id)
    this.emu.log.info('group.created', { group: id, participants: Object.keys(g.participants).length, refused: refused.length })
    this.notify(g, me, { tag: 'create', attrs: { reason: 'create', ...(g.createKey ? { key: g.createKey } : {}) }, content: [this.groupNode(g)] })
    // the answer lists the refused too, each with its error (whatsmeow's parseParticipant reads it there)
    return this.groupNode(g, refused)
  }

  /** adds one participant jid to `g` if WhatsApp would; returns {user?, error?} with the per-participant code */
  tryAdd (g, jid) {
    const user = this.userOf(jid)
    if (!user || !user.onWhatsApp) return { error: '404' }
    if (this.isMember(g, user)) return { user, error: '409' }
    if (user.groupsAdd === 'nobody') return { user, error: '403' }
    if (Object.keys(g.participants).length >= GROUP_LIMIT) return { user, error: '419' }
    g.participants[user.phone] = { admin: null }
    return { user }
  }

  participantNode (user, g, error) {
    const admin = g?.participants[user?.phone]?.admin
    const names = !user ? { jid: '' } : g?.addressing === 'lid' ? { jid: user.lidJid, phone_number: user.jid } : { jid: user.jid, ...(user.onWhatsApp ? { lid: user.lidJid } : {}) }
    return {
      tag: 'participant',
      attrs: { ...names, ...(admin && !error ? { type: admin } : {}), ...(error ? { error } : {}) },
      // a privacy refusal carries the invite (v4) the adder may send instead, as WhatsApp's answer does
      ...(error === '403' ? { content: [{ tag: 'add_request', attrs: { code: inviteCode(), expiration: String(unixNow() + 7 * 24 * 3600) } }] } : {})
    }
  }

  /** a per-participant result: the jid as asked, with its error code when refused */
  resultNode (jid, user, g, error) {
    const n = this.participantNode(user, g, error)
    return { ...n, attrs: { ...n.attrs, jid } }
  }

  groupNode (g, refused = []) {
    const members = this.members(g)
    const lid = g.addressing === 'lid'
    const named = (attr, phone) => {
      const u = this.dir.get(phone)
      return u ? { [attr]: memberJid(g, u), ...(lid ? { [`${attr}_pn`]: u.jid } : {}) } : {}
    }
    const content = [
      ...members.map((u) => this.participantNode(u, g)),
      ...refused,
      ...(g.description ? [{ tag: 'description', attrs: { id: g.description.id, ...named('participant', g.description.by), t: String(g.description.t) }, content: [{ tag: 'body', attrs: {}, content: Buffer.from(g.description.text, 'utf8') }] }] : []),
      ...(g.restrict ? [{ tag: 'locked', attrs: {} }] : []),
      ...(g.announce ? [{ tag: 'announcement', attrs: {} }] : [])
    ]
    return {
      tag: 'group',
      attrs: {
        id: g.id,
        ...named('creator', g.creator),
        creation: String(g.creation),
        subject: g.subject,
        s_t: String(g.subjectTime),
        ...named('s_o', g.subjectOwner),
        size: String(members.length),
        addressing_mode: lid ? 'lid' : 'pn'
      },
      content
    }
  }

  changeParticipants (me, g, node) {
    const action = node.tag
    if (!this.isAdmin(g, me)) throw iqError(401, 'not-authorized')
    const jids = childrenByTag(node, 'participant').map((p) => p.attrs.jid)
    if (action === 'add' && Object.keys(g.participants).length + jids.length > GROUP_LIMIT) throw iqError(419, 'resource-limit')
    const results = []
    const changed = []
    for (const jid of jids) {
      let r
      if (action === 'add') r = this.tryAdd(g, jid)
      else {
        const user = this.userOf(jid)
        if (!user || !user.onWhatsApp) r = { error: '404' }
        else if (!this.isMember(g, user)) r = { user, error: '409' }
        else if (action === 'remove') { delete g.participants[user.phone]; r = { user } } else {
          const want = action === 'promote' ? 'admin' : null
          if (g.participants[user.phone].admin === 'superadmin' && action === 'demote') r = { user, error: '403' } // the creator stays
          else { g.participants[user.phone].admin = want; r = { user } }
        }
      }
      if (!r.error) changed.push(r.user)
      results.push(this.resultNode(jid, r.user, g, r.error))
    }
    this.emu.log.info('group.participants_changed', { group: g.id, action, changed: changed.length, refused: results.length - changed.length })
    if (changed.length) {
      const list = { tag: action, attrs: {}, content: changed.map((u) => this.participantNode(u, g)) }
      this.notify(g, me, list, action === 'remove' ? changed : [])
      if (action === 'remove') this.emu.groupMessaging.onMembersRemoved(g, changed)
    }
    return { tag: action, attrs: {}, content: results }
  }

  setSubject (me, g, node) {
    if (g.restrict && !this.isAdmin(g, me)) throw iqError(401, 'not-authorized')
    const subject = (bytesOf(node)?.toString('utf8') || '').trim()
    if (!subject || subject.length > 100) throw iqError(406, 'not-acceptable')
    Object.assign(g, { subject, subjectOwner: me.phone, subjectTime: unixNow() })
    this.notify(g, me, { tag: 'subject', attrs: { subject, s_o: memberJid(g, me), ...(g.addressing === 'lid' ? { s_o_pn: me.jid } : {}), s_t: String(g.subjectTime) } })
    return undefined
  }

  setDescription (me, g, node) {
    if (g.restrict && !this.isAdmin(g, me)) throw iqError(401, 'not-authorized')
    const prev = node.attrs.prev
    if (prev && prev !== (g.description?.id || null)) throw iqError(409, 'conflict') // edited meanwhile
    const text = bytesOf(child(node, 'body'))?.toString('utf8') || ''
    if (text.length > 2048) throw iqError(406, 'not-acceptable')
    const id = node.attrs.id || randomId(8)
    g.description = node.attrs.delete === 'true' || !text ? null : { id, text, by: me.phone, t: unixNow() }
    const body = g.description ? [{ tag: 'body', attrs: {}, content: Buffer.from(text, 'utf8') }] : [{ tag: 'delete', attrs: {} }]
    this.notify(g, me, { tag: 'description', attrs: { id }, content: body })
    return undefined
  }

  setSetting (me, g, tag) {
    if (!this.isAdmin(g, me)) throw iqError(401, 'not-authorized')
    const [field, value] = SETTINGS[tag]
    g[field] = value
    this.notify(g, me, { tag, attrs: {} })
    return undefined
  }

  revokeInvite (me, g) {
    this.byInvite.delete(g.inviteCode)
    this.revoked.set(g.inviteCode, g.id)
    g.revokedCodes = [...(g.revokedCodes || []), g.inviteCode].slice(-20)
    g.inviteCode = inviteCode()
    this.byInvite.set(g.inviteCode, g.id)
    this.emu.log.info('group.invite_revoked', { group: g.id })
    this.notify(g, me, { tag: 'invite', attrs: { code: g.inviteCode } }, [], { adminsOnly: true })
  }

  join (me, g) {
    if (this.isMember(g, me)) return
    if (Object.keys(g.participants).length >= GROUP_LIMIT) throw iqError(419, 'resource-limit')
    g.participants[me.phone] = { admin: null }
    this.emu.log.info('group.joined', { group: g.id })
    this.notify(g, me, { tag: 'add', attrs: { reason: 'invite' }, content: [this.participantNode(me, g)] })
  }

  /** `<leave><group id/>…</leave>`: each group left; the server tells the others it as a self-removal */
  leave (me, node) {
    const out = []
    for (const gn of childrenByTag(node, 'group')) {
      const g = this.byJid(gn.attrs.id) || this.groups.get(gn.attrs.id)
      if (!g || !this.isMember(g, me)) {
        out.push({ tag: 'group', attrs: { id: gn.attrs.id, error: g ? '403' : '404' } })
        continue
      }
      delete g.participants[me.phone]
      this.notify(g, me, { tag: 'remove', attrs: { reason: 'leave' }, content: [this.participantNode(me, { addressing: g.addressing, participants: {} })] }, [me])
      this.emu.groupMessaging.onMembersRemoved(g, [me])
      this.keepAnAdmin(g, me)
      this.emu.log.info('group.left', { group: g.id })
      out.push({ tag: 'group', attrs: { id: gn.attrs.id } })
    }
    return { tag: 'leave', attrs: {}, content: out }
  }

  /** as WhatsApp does when the last admin leaves: the longest-standing participant becomes admin */
  keepAnAdmin (g, by) {
    const phones = Object.keys(g.participants)
    if (!phones.length || phones.some((p) => g.participants[p].admin)) return
    g.participants[phones[0]].admin = 'admin'
    this.notify(g, by, { tag: 'promote', attrs: {}, content: [this.participantNode(this.dir.get(phones[0]), g)] })
  }

  // ------------------------------------------------------------ notifications
  /**
   * a `w:gp2` notification about `g` by `actor` to every linked device of its members (and of `extra`,
   * e.g. the removed), kept until each device acknowledges it, queued for offline ones
   */
  notify (g, actor, childNode, extra = [], { adminsOnly = false } = {}) {
    const node = {
      tag: 'notification',
      attrs: { from: groupJid(g), type: 'w:gp2', id: randomId(10), participant: memberJid(g, actor), ...(g.addressing === 'lid' ? { participant_pn: actor.jid } : {}), t: String(unixNow()), notify: actor.name },
      content: [childNode]
    }
    const users = [...new Set([...this.members(g), ...extra])].filter((u) => !adminsOnly || this.isAdmin(g, u))
    let sent = 0
    let queued = 0
    for (const u of users) {
      for (const dev of u.devices.values()) {
        if (this.emu.deliverToDevice(u, dev, node) === 'sent') sent++
        else queued++
      }
    }
    this.emu.log.info('group.notified', { group: g.id, change: childNode.tag, sent, queued })
  }

  // ------------------------------------------------------------ control API
  /** GET /groups */
  view () {
    return [...this.groups.values()].map((g) => ({
      id: groupJid(g),
      subject: g.subject,
      description: g.description?.text ?? null,
      owner: e164(g.creator),
      invite_code: g.inviteCode,
      participants: this.members(g).map((u) => ({ phone_number: e164(u.phone), lid: u.lidJid, admin: g.participants[u.phone].admin }))
    }))
  }

  /** POST /contacts/{phone}/groups/{group}/participants {"add"|"remove"|"promote"|"demote": ["+..."]}: the contact's
   *  phone changes a group's participants as its admin would (refused as the iq is), notified as WhatsApp does */
  changeAsContact (phoneInput, groupId, body) {
    const me = this.dir.get(normalizePhone(phoneInput) || '')
    const g = this.byJid(groupId)
    if (!me || !g || !this.isMember(g, me)) throw apiError(404, 'not_in_group', 'no such group with this contact in it')
    const action = ['add', 'remove', 'promote', 'demote'].find((a) => Array.isArray(body[a]))
    const jids = (action ? body[action] : []).map((p) => normalizePhone(p)).filter(Boolean).map((p) => `${p}@s.whatsapp.net`)
    if (!action || !jids.length) throw apiError(400, 'invalid_participants', 'one of add, remove, promote, demote with +E.164 numbers')
    try {
      const out = this.changeParticipants(me, g, { tag: action, attrs: {}, content: jids.map((jid) => ({ tag: 'participant', attrs: { jid } })) })
      this.emu.persist()
      return { results: out.content.map((n) => ({ jid: n.attrs.jid, error: n.attrs.error ?? null })) }
    } catch (err) {
      if (err.iqCode) throw apiError(409, 'refused', `${err.iqCode} ${err.iqText}`)
      throw err
    }
  }

  /** POST /contacts/{phone}/privacy {"groups_add": "everyone"|"nobody"}: who may add this contact to groups */
  setPrivacy (phoneInput, body) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
    if (!['everyone', 'nobody'].includes(body.groups_add)) throw apiError(400, 'invalid_groups_add', '"groups_add" must be "everyone" or "nobody"')
    const u = this.dir.ensure(phone)
    u.groupsAdd = body.groups_add
    this.emu.persist()
    return { phone_number: e164(phone), groups_add: u.groupsAdd }
  }
}
