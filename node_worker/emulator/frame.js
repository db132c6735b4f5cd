// WhatsApp Web framing: the client's first WebSocket message starts with the 4-byte intro
// "WA" 0x06 <dict version> (optionally preceded by an "ED" routing header); every frame is a
// 3-byte big-endian length followed by the payload.
export const WA_INTRO = Buffer.from([0x57, 0x41, 6, 3])
export const MAX_FRAME = 0xffffff

export class FrameReader {
  constructor () {
    this.buf = Buffer.alloc(0)
    this.introSeen = false
  }

  /** feed bytes from one WebSocket message; returns complete frame payloads */
  push (data) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, Buffer.from(data)]) : Buffer.from(data)
    if (!this.introSeen) {
      if (this.buf.length >= 2 && this.buf[0] === 0x45 && this.buf[1] === 0x44) { // "ED" routing header
        if (this.buf.length < 7) return []
        const routingLen = (this.buf[4] << 16) | this.buf.readUInt16BE(5)
        if (this.buf.length < 7 + routingLen) return []
        this.buf = this.buf.subarray(7 + routingLen)
      }
      if (this.buf.length < 4) return []
      if (this.buf[0] !== WA_INTRO[0] || this.buf[1] !== WA_INTRO[1] || this.buf[2] !== WA_INTRO[2]) {
        throw new Error('bad intro header')
      }
      this.introSeen = true
      this.buf = this.buf.subarray(4)
    }
    const frames = []
    while (this.buf.length >= 3) {
      const size = (this.buf[0] << 16) | (this.buf[1] << 8) | this.buf[2]
      if (this.buf.length < size + 3) break
      frames.push(Buffer.from(this.buf.subarray(3, size + 3)))
      this.buf = this.buf.subarray(size + 3)
    }
    return frames
  }
}

export const encodeFrame = (payload) => {
  const len = payload.length
  if (len > MAX_FRAME) throw new Error('frame too large')
  const out = Buffer.allocUnsafe(len + 3)
  out[0] = (len >>> 16) & 0xff
  out[1] = (len >>> 8) & 0xff
  out[2] = len & 0xff
  Buffer.from(payload.buffer, payload.byteOffset, len).copy(out, 3)
  return out
}
