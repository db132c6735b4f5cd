// The only place that imports Baileys: its exported protobufs and binary-node codec.
// (Baileys is used as a library of wire formats here, never modified or mocked.)
export {
  proto,
  encodeBinaryNode,
  decodeBinaryNode,
  jidDecode,
  jidEncode,
  getBinaryNodeChild,
  getBinaryNodeChildren,
  getAllBinaryNodeChildren
} from 'baileys'

export const S_WHATSAPP_NET = 's.whatsapp.net'

/** child helpers that do not depend on Baileys internals */
export const children = (node) => (Array.isArray(node?.content) ? node.content : [])
export const child = (node, tag) => children(node).find((c) => c.tag === tag)
export const childrenByTag = (node, tag) => children(node).filter((c) => c.tag === tag)
export const bytesOf = (node) => {
  if (!node) return undefined
  const c = node.content
  if (c == null) return undefined
  if (typeof c === 'string') return Buffer.from(c, 'utf8')
  if (c instanceof Uint8Array) return Buffer.from(c)
  return undefined
}
export const uintOf = (node) => {
  const b = bytesOf(node)
  if (!b) return undefined
  let n = 0
  for (const x of b) n = n * 256 + x
  return n
}
export const uintBytes = (n, len) => {
  const b = Buffer.alloc(len)
  for (let i = len - 1; i >= 0; i--) { b[i] = n & 0xff; n = Math.floor(n / 256) }
  return b
}

/** a bundle's one-time pre-key as `<key><id/><value/></key>` (a key fetch, a retry receipt's keys) */
export const preKeyNode = ({ keyId, publicKey }) => ({
  tag: 'key',
  attrs: {},
  content: [
    { tag: 'id', attrs: {}, content: uintBytes(keyId, 3) },
    { tag: 'value', attrs: {}, content: Buffer.from(publicKey) }
  ]
})

/** a bundle's signed pre-key as `<skey><id/><value/><signature/></skey>` */
export const signedPreKeyNode = ({ keyId, publicKey, signature }) => ({
  tag: 'skey',
  attrs: {},
  content: [
    { tag: 'id', attrs: {}, content: uintBytes(keyId, 3) },
    { tag: 'value', attrs: {}, content: Buffer.from(publicKey) },
    { tag: 'signature', attrs: {}, content: Buffer.from(signature) }
  ]
})

/** JSON form of a binary node (bytes as base64) for the offline queue in the state file */
export const nodeToJSON = (node) => {
  const out = { tag: node.tag, attrs: { ...node.attrs } }
  if (Array.isArray(node.content)) out.content = node.content.map(nodeToJSON)
  else if (node.content instanceof Uint8Array) out.bytes = Buffer.from(node.content).toString('base64')
  else if (typeof node.content === 'string') out.text = node.content
  return out
}
export const nodeFromJSON = (j) => {
  const node = { tag: j.tag, attrs: { ...j.attrs } }
  if (Array.isArray(j.content)) node.content = j.content.map(nodeFromJSON)
  else if (j.bytes != null) node.content = Buffer.from(j.bytes, 'base64')
  else if (j.text != null) node.content = j.text
  return node
}

export const unixNow = () => Math.floor(Date.now() / 1000)

/** WhatsApp's random padding of plaintext message protobufs (1..16 bytes, each equal to the count) */
export const padMessage = (bytes) => {
  const n = (Math.floor(Math.random() * 16) & 0x0f) + 1
  return Buffer.concat([Buffer.from(bytes), Buffer.alloc(n, n)])
}
export const unpadMessage = (bytes) => {
  const b = Buffer.from(bytes)
  if (!b.length) throw new Error('empty plaintext')
  const n = b[b.length - 1]
  if (n === 0 || n > b.length) throw new Error('bad padding')
  return b.subarray(0, b.length - n)
}
