// The emulator says why a connection ended: a companion that sees its link end (Baileys: 428 Connection
// Terminated, the server's side closed it) can be matched to the server's reason in the logs. The emulator's own
// ending is `connection.closing` naming its caller; the client's is `connection.closed_by_client` with the
// WebSocket close code (1006: the TCP connection ended without a close frame).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { startEmulator, until } from './emulator-helpers.js'

const open = (emu) => new Promise((resolve, reject) => {
  const ws = new WebSocket(emu.wsUrl)
  ws.once('open', () => resolve(ws))
  ws.once('error', reject)
})
const closed = (ws) => new Promise((resolve) => ws.once('close', (code) => resolve(code)))

test('an emulator-ended connection names its reason; a client-ended one its close code', async (t) => {
  const emu = await startEmulator()
  t.after(() => emu.stop())
  const events = (name) => emu.lines.filter((e) => e.event === name)

  // bytes that are no WhatsApp Web intro: the server ends the connection at once
  const bad = await open(emu)
  const badEnd = closed(bad)
  bad.send(Buffer.from('XXXXXXXX'))
  assert.equal(await badEnd, 1006, 'ended without a close frame (terminate)')
  const closing = await until(() => events('connection.closing')[0], 5000, 'connection.closing')
  assert.equal(closing.how, 'terminate')
  assert.match(closing.by, /onData/, 'the caller that ended it: the frame reader of onData')
  assert.equal(events('connection.closed_by_client').length, 0, 'the client did not close it')

  // the client closes with a close frame: its code is told, and the server ended nothing itself
  const good = await open(emu)
  const goodEnd = closed(good)
  good.close(1000)
  await goodEnd
  const byClient = await until(() => events('connection.closed_by_client')[0], 5000, 'connection.closed_by_client')
  assert.equal(byClient.ws_code, 1000)
  assert.equal(events('connection.closing').length, 1, 'only the first connection was ended by the server')
})
