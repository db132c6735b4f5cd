// Lookups a companion makes before it sends: usync (devices, LID, "on WhatsApp") and prekey bundles.
// Split from messaging.js: what the server answers about users, not what it routes.
import { child, children, childrenByTag, bytesOf, uintBytes, unixNow, jidDecode, preKeyNode, signedPreKeyNode } from './wa.js'
import { randomId } from './crypto.js'
import { normalizePhone } from './accounts.js'

const safeDecode = (jid) => {
  try { return jid ? jidDecode(jid) : undefined } catch { return undefined }
}

export class Lookups {
  constructor (emu) {
    this.emu = emu
  }

  get dir () { return this.emu.directory }

  async handleIq (conn, iq) {
    const xmlns = iq.attrs.xmlns
    const first = Array.isArray(iq.content) ? iq.content[0] : undefined
    if (xmlns === 'usync' && first?.tag === 'usync') {
      this.usync(conn, iq, first)
      return true
    }
    if (xmlns === 'encrypt' && iq.attrs.type === 'get' && first?.tag === 'key') {
      this.keyBundles(conn, iq, first)
      return true
    }
    return false
  }

  // ---------------------------------------------------------------- usync
  usync (conn, iq, usync) {
    const protocols = children(child(usync, 'query')).map((c) => c.tag)
    const users = childrenByTag(child(usync, 'list'), 'user')
    const out = []
    for (const u of users) {
      let jid = u.attrs.jid
      let user
      const contactNode = child(u, 'contact')
      if (!jid && contactNode) {
        const phone = normalizePhone(bytesOf(contactNode)?.toString('utf8') || '')
        if (!phone) continue
        jid = `${phone}@s.whatsapp.net`
      }
      const d = safeDecode(jid)
      if (!d?.user) continue
      if (d.server === 'lid') user = this.dir.byLidUser(d.user)
      else if (d.server === 's.whatsapp.net') user = normalizePhone(d.user) ? this.dir.ensure(d.user) : undefined // contacts exist on first use
      const onWa = !!user && user.onWhatsApp
      const content = []
      for (const p of protocols) {
        if (p === 'devices') {
          const list = onWa
            ? [{ tag: 'device', attrs: { id: '0' } }, ...[...user.devices.values()].map((dv) => ({ tag: 'device', attrs: { id: String(dv.id), 'key-index': String(dv.keyIndex) } }))]
            : []
          content.push({
            tag: 'devices',
            attrs: {},
            content: [
              { tag: 'device-list', attrs: {}, content: list },
              ...(onWa ? [{ tag: 'key-index-list', attrs: { ts: String(this.keyIndexTs(user)) } }] : [])
            ]
          })
        } else if (p === 'lid') {
          if (onWa) content.push({ tag: 'lid', attrs: { val: user.lidJid } })
        } else if (p === 'contact') {
          content.push({ tag: 'contact', attrs: { type: onWa ? 'in' : 'out' }, ...(contactNode ? { content: bytesOf(contactNode) } : {}) })
        }
      }
      out.push({ tag: 'user', attrs: { jid }, content })
    }
    conn.log.debug('usync.answered', { users: out.length, protocols })
    conn.result(iq, [{
      tag: 'usync',
      attrs: { sid: usync.attrs.sid || randomId(4), index: '0', last: 'true', mode: usync.attrs.mode || 'query', context: usync.attrs.context || 'interactive' },
      content: [
        { tag: 'result', attrs: {}, content: protocols.map((p) => ({ tag: p, attrs: {} })) },
        { tag: 'list', attrs: {}, content: out }
      ]
    }])
    this.emu.persist()
  }

  keyIndexTs (user) {
    let ts = 0
    for (const d of user.devices.values()) ts = Math.max(ts, d.pairedAt || 0)
    return ts || unixNow()
  }

  // ---------------------------------------------------------------- prekey bundles
  keyBundles (conn, iq, keyNode) {
    const list = []
    for (const u of childrenByTag(keyNode, 'user')) {
      const jid = u.attrs.jid
      const d = safeDecode(jid)
      const user = d ? this.dir.resolve(d) : undefined
      const deviceId = d?.device || 0
      let bundle
      if (user && user.onWhatsApp) {
        if (deviceId === 0) bundle = user.signal.takeBundle({ badSignature: user.signedPreKeySignature === 'bad' })
        else bundle = user.devices.get(deviceId)?.takeBundle()
      }
      if (!bundle) {
        list.push({ tag: 'user', attrs: { jid }, content: [{ tag: 'error', attrs: { code: '404', text: 'item-not-found' } }] })
        continue
      }
      list.push({
        tag: 'user',
        attrs: { jid },
        content: [
          { tag: 'registration', attrs: {}, content: uintBytes(bundle.registrationId, 4) },
          { tag: 'type', attrs: {}, content: Buffer.from([5]) },
          { tag: 'identity', attrs: {}, content: Buffer.from(bundle.identityKey) },
          signedPreKeyNode(bundle.signedPreKey),
          ...(bundle.preKey ? [preKeyNode(bundle.preKey)] : [])
        ]
      })
    }
    conn.log.debug('prekeys.handed_out', { users: list.length })
    conn.result(iq, [{ tag: 'list', attrs: {}, content: list }])
    this.emu.persist()
  }
}
