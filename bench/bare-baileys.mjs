// The baseline for bench/e2e.py: a bare Baileys client (the gateway's own node_modules/baileys) paired
// through the emulator's control API and sending straight into the emulator, no gateway in between.
// Usage: node bench/bare-baileys.mjs <emulator base url> <account phone> <contact phone> <n> <concurrency> <tag>
// Prints one line 'BENCH ' + JSON: {"paired_s", "sent", "errors", "send_start", "send_end"} (epoch seconds), then exits.
// The caller waits for decryption at the contact (GET /contacts/{phone}/messages), as it does for the gateway.
import { pairDevice, tmpDir, trustEmulator } from '../node_worker/test/emulator-helpers.js'

const [base, account, contact, nArg, cArg, tag] = process.argv.slice(2)
const n = Number(nArg)
const concurrency = Number(cArg)
const hardStop = setTimeout(() => { console.error('bare-baileys: gave up after 60 s'); process.exit(2) }, 60000)

const api = async (method, p, body) => {
  const res = await fetch(base + p, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, body: json }
}

const root = (await api('GET', '/')).body.root_public_key
const emu = { base, wsUrl: base.replace(/^http/, 'ws') + '/ws/chat', rootPublicKey: root, api }
trustEmulator(emu)

const t0 = Date.now()
const { client } = await pairDevice(emu, account, { authDir: tmpDir('wa-bench-bare-'), settle: true })
const pairedS = (Date.now() - t0) / 1000
const jid = contact.replace('+', '') + '@s.whatsapp.net'
// one message first so the Signal session with the contact exists (the gateway side gets the same warm-up)
await client.sock.sendMessage(jid, { text: `${tag} warm-up` })

let next = 0
let errors = 0
const start = Date.now()
const cpuStart = process.cpuUsage()
const lane = async () => {
  while (next < n) {
    const i = next++
    try { await client.sock.sendMessage(jid, { text: `${tag} ${i}` }) } catch { errors++ }
  }
}
await Promise.all(Array.from({ length: concurrency }, lane))
const end = Date.now()
process.stdout.write('BENCH ' + JSON.stringify({ paired_s: pairedS, sent: n - errors, errors, send_start: start / 1000, send_end: end / 1000 }) + '\n')
// Keep the socket open until the caller has seen every message decrypted at the contact: stdin closes then.
process.stdin.resume()
process.stdin.on('end', async () => {
  // its CPU from the first send until every message was decrypted at the contact (acks and receipts included)
  const cpu = process.cpuUsage(cpuStart)
  process.stdout.write('CPU ' + JSON.stringify({ cpu_ms: (cpu.user + cpu.system) / 1000 }) + '\n')
  await client.end().catch(() => {})
  clearTimeout(hardStop)
  process.exit(0)
})
