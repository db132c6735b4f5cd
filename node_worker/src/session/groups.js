// The account's groups (issue 26, item 3): list, create, read, change, participants, invite links, join, leave,
// through Baileys' w:g2 queries (Socket/groups.js), and the group metadata cache a group send relays with
// (group-metadata.js). Participants are shown by phone number (E.164) and LID, as the rest of the API does; a
// participant change answers WhatsApp's own result per participant (200, or 403 privacy, 404 not on WhatsApp,
// 409 already in / not in), never a failure of the whole call for one of them.
import { generateMessageIDV2, getBinaryNodeChild, getBinaryNodeChildren, jidDecode } from 'baileys'
import { extractGroupMetadata } from 'baileys/lib/Socket/groups.js'
import { phoneToJid } from '../phone.js'
import { STATE } from '../states.js'
import { GroupMetadataCache, groupError, notFound } from './group-metadata.js'

export const INVITE_LINK = 'https://chat.whatsapp.com/'
// What a participant's result code means (WhatsApp's codes in the w:g2 answer, as whatsmeow reads them).
const RESULT_CODES = { 401: 'not_admin', 403: 'privacy', 404: 'not_on_whatsapp', 408: 'recently_left', 419: 'group_full', 500: 'whatsapp_error' }
const resultCode = (status, action) => status === 409 ? (action === 'add' ? 'already_in_group' : 'not_in_group') : RESULT_CODES[status]

const userOf = (jid) => jidDecode(jid ?? '')?.user ?? null
const iso = (seconds) => Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000).toISOString() : null

export class Groups {
  constructor (session) {
    this.session = session
    this.metadata = new GroupMetadataCache()
  }

  // The socket of a connected session, else 409 not_connected (as a send); with sessions in PostgreSQL a former
  // owner asks WhatsApp nothing (409 not_owner, fenced).
  async connected () {
    const s = this.session
    if (s.state !== STATE.CONNECTED || !s.sock) throw s.lifecycle.notConnected()
    const sock = s.sock
    if (s.pg) await s.fencing.assertOwner()
    return sock
  }

  // Whether one of the group's participants is the account (by phone number or LID: a group may address either).
  isMe (p) {
    const me = this.session.store?.state.creds.me
    const mine = new Set([userOf(me?.id), userOf(me?.lid)].filter(Boolean))
    return [p.id, p.phoneNumber, p.lid].some((jid) => mine.has(userOf(jid)))
  }

  /** The group's metadata when the account is in it (cached for the send that follows), else 404 group_not_found. */
  async assertMember (sock, jid) {
    const metadata = await this.metadata.fetch(sock, jid)
    if (!metadata.participants.some((p) => this.isMe(p))) {
      this.metadata.forget(jid)
      throw notFound()
    }
    return metadata
  }

  // {phone_number, lid} of a participant jid (its other form from the group's answer or the LID mapping store).
  async person (jid, alt) {
    if (!jid) return null
    const { phone, lid } = await this.session.inbound.identify(jid.replace(/:\d+@/, '@'), alt ?? null)
    return { phone_number: phone, lid }
  }

  async participantOf (p) {
    return { ...(await this.person(p.id, p.phoneNumber ?? p.lid)), admin: p.admin ?? null }
  }

  /** GET /groups/{id}: the metadata the API shows. */
  async view (metadata) {
    const owner = metadata.owner ? await this.person(metadata.owner, metadata.ownerPn) : null
    return {
      id: metadata.id,
      subject: metadata.subject ?? null,
      description: metadata.desc ?? null,
      owner: owner?.phone_number ?? null,
      created_at: iso(metadata.creation),
      announce: !!metadata.announce,
      restrict: !!metadata.restrict,
      participants: await Promise.all(metadata.participants.map((p) => this.participantOf(p)))
    }
  }

  async list () {
    const sock = await this.connected()
    let all
    try {
      all = await sock.groupFetchAllParticipating()
    } catch (err) {
      throw groupError(err)
    }
    const groups = []
    for (const metadata of Object.values(all)) {
      this.metadata.set(metadata)
      const me = metadata.participants.find((p) => this.isMe(p))
      groups.push({ id: metadata.id, subject: metadata.subject ?? null, participants_count: metadata.participants.length, role: me?.admin ?? 'member' })
    }
    return { groups }
  }

  async get (jid) {
    const sock = await this.connected()
    this.metadata.forget(jid) // a read asks WhatsApp: it shows what is, not what a send last cached
    return this.view(await this.assertMember(sock, jid))
  }

  /**
   * POST /groups: Baileys' groupCreate iq, sent here as Baileys sends it (Socket/groups.js) because its answer
   * names each participant WhatsApp could not add (`error` on its <participant>), which groupCreate drops.
   */
  async create (subject, phones) {
    const sock = await this.connected()
    let answer
    try {
      answer = await sock.query({
        tag: 'iq',
        attrs: { type: 'set', xmlns: 'w:g2', to: '@g.us' },
        content: [{ tag: 'create', attrs: { subject, key: generateMessageIDV2() }, content: phones.map((p) => ({ tag: 'participant', attrs: { jid: phoneToJid(p) } })) }]
      })
    } catch (err) {
      throw groupError(err, { member: true })
    }
    const nodes = getBinaryNodeChildren(getBinaryNodeChild(answer, 'group'), 'participant')
    const failed = new Set(nodes.filter((n) => n.attrs.error && n.attrs.error !== '200').map((n) => n.attrs.jid))
    const metadata = extractGroupMetadata(answer)
    metadata.participants = metadata.participants.filter((p) => !failed.has(p.id))
    this.metadata.set(metadata)
    const results = this.results('add', phones, nodes.map((n) => ({ jid: n.attrs.jid, status: n.attrs.error || '200', content: n })))
    this.session.log.info({ group_id: metadata.id, participants: phones.length, added: results.filter((r) => r.status === 200).length }, 'group.created')
    return { ...(await this.view(metadata)), results }
  }

  /** PATCH /groups/{id}: subject and/or description ('' removes the description); answers the new metadata. */
  async update (jid, { subject, description }) {
    const sock = await this.connected()
    await this.assertMember(sock, jid)
    try {
      if (subject !== undefined) await sock.groupUpdateSubject(jid, subject)
      if (description !== undefined) await sock.groupUpdateDescription(jid, description)
    } catch (err) {
      throw groupError(err, { member: true })
    } finally {
      this.metadata.forget(jid)
    }
    this.session.log.info({ group_id: jid, subject: subject !== undefined, description: description !== undefined }, 'group.updated')
    return this.get(jid)
  }

  /** POST /groups/{id}/participants: one action on some numbers; WhatsApp's result for each. */
  async participants (jid, action, phones) {
    const sock = await this.connected()
    await this.assertMember(sock, jid)
    let answered
    try {
      answered = await sock.groupParticipantsUpdate(jid, phones.map(phoneToJid), action)
    } catch (err) {
      throw groupError(err, { member: true })
    } finally {
      this.metadata.forget(jid) // the next send fans out to who is in now (a new member gets the sender key)
    }
    const results = this.results(action, phones, answered)
    this.session.log.info({ group_id: jid, action, participants: phones.length, ok: results.filter((r) => r.status === 200).length }, 'group.participants_changed')
    return { results }
  }

  // Each asked number's result, matched by number (WhatsApp may answer by LID, with the number beside it).
  results (action, phones, answered) {
    return phones.map((phone, i) => {
      const digits = phone.slice(1)
      const r = answered.find((a) => userOf(a.jid) === digits || userOf(a.content?.attrs?.phone_number) === digits) ??
        (answered.length === phones.length ? answered[i] : undefined)
      if (!r) return { phone_number: phone, status: 502, code: 'no_answer' }
      const status = Number(r.status) || 500
      const code = status === 200 ? undefined : resultCode(status, action)
      return { phone_number: phone, status, ...(code ? { code } : {}) }
    })
  }

  async invite (jid, { revoke = false } = {}) {
    const sock = await this.connected()
    await this.assertMember(sock, jid)
    let code
    try {
      code = revoke ? await sock.groupRevokeInvite(jid) : await sock.groupInviteCode(jid)
    } catch (err) {
      throw groupError(err, { member: true })
    }
    if (revoke) this.session.log.info({ group_id: jid }, 'group.invite_revoked')
    return { code, link: `${INVITE_LINK}${code}` }
  }

  async join (code) {
    const sock = await this.connected()
    let jid
    try {
      jid = await sock.groupAcceptInvite(code)
    } catch (err) {
      const known = groupError(err)
      // an unknown, revoked or expired code: no group to join
      throw (typeof err?.data === 'number' && [404, 406, 410].includes(err.data)) ? notFound() : known
    }
    if (!jid) throw notFound()
    this.metadata.forget(jid)
    this.session.log.info({ group_id: jid }, 'group.joined')
    return { id: jid }
  }

  async leave (jid) {
    const sock = await this.connected()
    await this.assertMember(sock, jid)
    try {
      await sock.groupLeave(jid)
    } catch (err) {
      throw groupError(err, { member: true })
    } finally {
      this.metadata.forget(jid)
    }
    this.session.log.info({ group_id: jid }, 'group.left')
    return { id: jid }
  }
}
