// Login of a linked companion (every connection after pairing) and the iq queries a client
// makes around login: prekey count/upload/digest/rotate, passive, abt props, blocklist,
// privacy, ping, app-state sync, logout (remove-companion-device).
import { createHash } from 'node:crypto'
import { child, childrenByTag, bytesOf, uintOf, uintBytes, unixNow, jidDecode } from './wa.js'
import { verifyStrict, toSignalPub } from './crypto.js'

export class Login {
  constructor (emu) {
    this.emu = emu
  }

  /** ClientPayload with username + device */
  handle (conn, payload) {
    const emu = this.emu
    const phone = payload.username != null ? String(payload.username) : ''
    const deviceId = Number(payload.device || 0)
    conn.loginPhone = phone
    if (emu.faults.isBlackholed(conn)) {
      conn.silenced = true // the login got no answer: this connection stays mute until the client gives up
      conn.log.info('login.blackholed', { phone_suffix: phone.slice(-4) })
      return
    }
    const user = emu.directory.get(phone)
    const device = user?.devices.get(deviceId)
    if (!device || !Buffer.from(conn.clientStatic).equals(Buffer.from(device.noiseKey))) {
      conn.log.info('login.refused', { reason: device ? 'noise_key_mismatch' : 'device_not_linked', device: `${phone}:${deviceId}` })
      // what WhatsApp answers a logged-out / unknown companion: Baileys maps it to loggedOut (401)
      conn.failure(401)
      return
    }
    // a device can be connected once: an older connection is replaced
    for (const other of emu.connectionsOfDevice(user, device)) {
      if (other !== conn) {
        other.log.info('connection.replaced', { by: conn.id })
        other.streamError({}, [{ tag: 'conflict', attrs: { type: 'replaced' } }])
      }
    }
    conn.user = user
    conn.device = device
    conn.state = 'connected'
    emu.onLoggedIn(conn)
    if (payload.pushName && !user.pushName) user.pushName = payload.pushName
    conn.log.info('login.ok', { jid: device.jid })
    conn.sendNode({
      tag: 'success',
      attrs: {
        t: String(unixNow()),
        lid: device.lidJid,
        creation: String(device.pairedAt),
        location: 'emu',
        props: '1',
        abprops: '1',
        display_name: ''
      }
    })
    // what the device has not acknowledged yet (sent before, in order), then what was queued while it
    // was offline, all marked offline, then the end-of-offline marker (late after a slow_offline fault,
    // as from a server still streaming a large offline backlog). All of it stays kept until acknowledged.
    let sent = 0
    const sendQueued = (unacked) => {
      const nodes = emu.takeForLogin(device, { unacked })
      for (const node of nodes) {
        node.attrs.offline = '1'
        conn.sendNode(node)
      }
      sent += nodes.length
    }
    const finish = () => {
      if (conn.state === 'closed') return
      sendQueued(false) // what was queued meanwhile
      conn.sendNode({ tag: 'ib', attrs: { from: 's.whatsapp.net' }, content: [{ tag: 'offline', attrs: { count: String(sent) } }] })
      conn.offlineSent = true
      if (sent) conn.log.info('login.offline_sent', { count: sent })
      emu.history.onLinked(conn)
    }
    sendQueued(true)
    const delayMs = emu.faults.takeOfflineDelay(user.phone)
    if (delayMs) {
      conn.log.info('fault.slow_offline', { delay_ms: delayMs })
      setTimeout(finish, delayMs).unref?.()
    } else {
      finish()
    }
  }

  /** returns true when it handled the iq */
  async handleIq (conn, iq) {
    const xmlns = iq.attrs.xmlns
    const type = iq.attrs.type
    const first = Array.isArray(iq.content) ? iq.content[0] : undefined
    const tag = first?.tag
    const dev = conn.device
    switch (`${xmlns}|${type}|${tag}`) {
      case 'w:p|get|ping':
        conn.result(iq)
        return true
      case 'encrypt|get|count':
        if (!dev) return false
        conn.result(iq, [{ tag: 'count', attrs: { value: String(dev.preKeys.size) } }])
        return true
      case 'encrypt|set|registration':
      case 'encrypt|set|type':
      case 'encrypt|set|identity':
      case 'encrypt|set|list':
        if (!dev) return false
        return this.uploadPreKeys(conn, iq)
      case 'encrypt|set|rotate':
        if (!dev) return false
        return this.rotateSignedPreKey(conn, iq)
      case 'encrypt|get|digest':
        if (!dev) return false
        conn.result(iq, [this.digest(dev)])
        return true
      case 'passive|set|active':
      case 'passive|set|passive':
        conn.result(iq)
        return true
      case 'abt|get|props':
        conn.result(iq, [{
          tag: 'props',
          attrs: { protocol: '1', hash: 'emu-props-1' },
          content: [
            { tag: 'prop', attrs: { config_code: '10518', config_value: 'false' } },
            { tag: 'prop', attrs: { config_code: '14303', config_value: 'false' } }
          ]
        }])
        return true
      case 'blocklist|get|undefined':
      case 'blocklist|get|list':
        conn.result(iq, [{ tag: 'list', attrs: {} }])
        return true
      case 'privacy|get|privacy':
        conn.result(iq, [{
          tag: 'privacy',
          attrs: {},
          content: [
            ['readreceipts', 'all'], ['last', 'all'], ['online', 'all'], ['profile', 'all'],
            ['status', 'all'], ['groupadd', 'all'], ['calladd', 'all'], ['messages', 'all']
          ].map(([name, value]) => ({ tag: 'category', attrs: { name, value } }))
        }])
        return true
      case 'privacy|set|tokens':
        conn.result(iq)
        return true
      case 'md|set|remove-companion-device':
        return this.removeCompanion(conn, iq, first)
      case 'w:sync:app:state|set|sync':
        // no app-state patches on this network: every collection is up to date at its version
        conn.result(iq, [{
          tag: 'sync',
          attrs: {},
          content: childrenByTag(first, 'collection').map((c) => ({
            tag: 'collection',
            attrs: { name: c.attrs.name, version: c.attrs.version || '0' }
          }))
        }])
        return true
      default:
        return false
    }
  }

  uploadPreKeys (conn, iq) {
    const dev = conn.device
    const identity = bytesOf(child(iq, 'identity'))
    if (identity && !identity.equals(Buffer.from(dev.identityKey))) {
      conn.log.warn('prekeys.identity_mismatch')
      conn.errorResult(iq, 406, 'not-acceptable')
      return true
    }
    const skey = child(iq, 'skey')
    if (skey) {
      const spk = this.parseSignedPreKey(skey)
      if (!spk || !verifyStrict(dev.identityKey, toSignalPub(spk.publicKey), spk.signature)) {
        conn.log.warn('prekeys.bad_signed_prekey')
        conn.errorResult(iq, 406, 'not-acceptable')
        return true
      }
      dev.signedPreKey = spk
    }
    let added = 0
    for (const key of childrenByTag(child(iq, 'list'), 'key')) {
      const id = uintOf(child(key, 'id'))
      const value = bytesOf(child(key, 'value'))
      if (id == null || !value || value.length !== 32) continue
      dev.addPreKey(id, value)
      added++
    }
    conn.log.info('prekeys.uploaded', { count: added, total: dev.preKeys.size })
    conn.result(iq)
    this.emu.persist()
    this.emu.history.onLinked(conn)
    return true
  }

  rotateSignedPreKey (conn, iq) {
    const dev = conn.device
    const spk = this.parseSignedPreKey(child(child(iq, 'rotate'), 'skey'))
    if (!spk || !verifyStrict(dev.identityKey, toSignalPub(spk.publicKey), spk.signature)) {
      conn.errorResult(iq, 406, 'not-acceptable')
      return true
    }
    dev.signedPreKey = spk
    conn.result(iq)
    this.emu.persist()
    return true
  }

  parseSignedPreKey (skey) {
    if (!skey) return null
    const keyId = uintOf(child(skey, 'id'))
    const publicKey = bytesOf(child(skey, 'value'))
    const signature = bytesOf(child(skey, 'signature'))
    if (keyId == null || !publicKey || publicKey.length !== 32 || !signature || signature.length !== 64) return null
    return { keyId, publicKey, signature }
  }

  digest (dev) {
    const ids = [...dev.preKeys.keys()]
    const hash = createHash('sha1')
    hash.update(Buffer.from(dev.identityKey))
    hash.update(Buffer.from(dev.signedPreKey.publicKey))
    hash.update(Buffer.from(dev.signedPreKey.signature))
    for (const id of ids) hash.update(Buffer.from(dev.preKeys.get(id)))
    return {
      tag: 'digest',
      attrs: {},
      content: [
        { tag: 'type', attrs: {}, content: Buffer.from([5]) },
        { tag: 'identity', attrs: {}, content: Buffer.from(dev.identityKey) },
        { tag: 'skey', attrs: {}, content: [{ tag: 'id', attrs: {}, content: uintBytes(dev.signedPreKey.keyId, 3) }] },
        { tag: 'list', attrs: {}, content: ids.map((id) => ({ tag: 'id', attrs: {}, content: uintBytes(id, 3) })) },
        { tag: 'hash', attrs: {}, content: hash.digest() }
      ]
    }
  }

  /** sock.logout(): the companion asks to be removed */
  removeCompanion (conn, iq, node) {
    const emu = this.emu
    conn.result(iq)
    let target = conn.device
    try {
      const d = node.attrs.jid ? jidDecode(node.attrs.jid) : null
      if (d && conn.user) target = conn.user.devices.get(d.device || 0) || target
    } catch { /* an unparsable jid: the target stays the account */ }
    if (conn.user && target) {
      conn.log.info('device.removed_by_client', { jid: target.jid, reason: node.attrs.reason || null })
      emu.unlinkDevice(conn.user, target, { notify: false })
    }
    conn.close()
    return true
  }
}
