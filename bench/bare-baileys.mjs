// The baseline for bench/e2e.py: a bare Baileys client (the gateway's own node_modules/baileys) paired
// through the emulator's control API and sending straight into the emulator, no gateway in between.
// Usage: node bench/bare-baileys.mjs <emulator base url> <account phone> <contact phone> <n> <concurrency> <tag>
// Prints one line 'BENCH ' + JSON: {"paired_s", "sent", "errors", "send_start", "send_end"} (epoch seconds), then exits.
// The caller waits for decryption at the contact (GET /contacts/{phone}/messages), as it does for the gateway.
import { connectBare, endOnStdinClose, hardStop } from './bare-client.mjs'

const [base, account, contact, nArg, cArg, tag] = process.argv.slice(2)
const n = Number(nArg)
const concurrency = Number(cArg)
const stop = hardStop('bare-baileys', 60)
const { client, pairedS } = await connectBare(base, account)
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
// Keep the socket open until the caller has seen every message decrypted at the contact: stdin closes then;
// its CPU is from the first send until then (acks and receipts included).
endOnStdinClose(client, cpuStart, stop)
