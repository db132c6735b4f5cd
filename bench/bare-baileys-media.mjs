// The baseline for bench/media.py: a bare Baileys client (the gateway's own node_modules/baileys) paired through
// the emulator's control API, moving media straight through the emulator and its media host, no gateway between.
//   node bench/bare-baileys-media.mjs send <emulator url> <account> <contact> <dir> <concurrency> <tag>
//     sends every file of <dir> (sorted) as an image (image/jpeg, no thumbnail, caption "<tag> <i>", as the worker
//     sends: session/media.js) and waits for each one's server ack (<ack class=message>, the gateway's "sent");
//     prints 'BENCH ' + JSON {"paired_s", "sent", "errors", "bytes", "send_start", "send_end"} (epoch seconds).
//   node bench/bare-baileys-media.mjs receive <emulator url> <account> <n> <tag>
//     prints 'READY', then downloads (downloadMediaMessage) each image whose caption starts with <tag> as it
//     arrives, until <n> are in; prints 'BENCH ' + JSON {"received", "errors", "bytes", "last_done"}.
// Either then waits for stdin to close, prints 'CPU ' + JSON {"cpu_ms"} (from its first send or READY) and exits.
// The caller sets NODE_EXTRA_CA_CERTS to the emulator's media CA (GET /media's ca_file), as the sandbox worker's.
import fs from 'node:fs'
import path from 'node:path'
// baileys from the worker's node_modules (bench/ has none of its own)
import { downloadMediaMessage } from '../node_worker/node_modules/baileys/lib/index.js'
import { connectBare, endOnStdinClose, hardStop, report as out, serverAcks } from './bare-client.mjs'

const [mode, base, account, ...rest] = process.argv.slice(2)
const stop = hardStop('bare-baileys-media', 120)
const { client, pairedS } = await connectBare(base, account, { prefix: 'wa-bench-bare-media-' })
let cpuStart

/** the server's <ack class=message> per message id, as the worker's server-acks.js waits for it */
const acked = serverAcks(client.sock)

async function send ([contact, dir, cArg, tag]) {
  const jid = contact.replace('+', '') + '@s.whatsapp.net'
  const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f))
  // one message first so that the Signal session with the contact exists (the gateway side gets a warm-up too)
  await client.sock.sendMessage(jid, { text: `${tag} warm-up` })
  let next = 0
  let errors = 0
  let bytes = 0
  const start = Date.now()
  cpuStart = process.cpuUsage()
  const lane = async () => {
    while (next < files.length) {
      const i = next++
      try {
        const image = fs.readFileSync(files[i])
        const sent = await client.sock.sendMessage(jid, { image, mimetype: 'image/jpeg', caption: `${tag} ${i}`, jpegThumbnail: null })
        await acked(sent.key.id)
        bytes += image.length
      } catch { errors++ }
    }
  }
  await Promise.all(Array.from({ length: Number(cArg) }, lane))
  out('BENCH', { paired_s: pairedS, sent: files.length - errors, errors, bytes, send_start: start / 1000, send_end: Date.now() / 1000 })
}

async function receive ([nArg, tag]) {
  const n = Number(nArg)
  let received = 0
  let errors = 0
  let bytes = 0
  let lastDone = 0
  let done
  const finished = new Promise((resolve) => { done = resolve })
  client.sock.ev.on('messages.upsert', ({ messages }) => {
    for (const msg of messages) {
      if (!msg.message?.imageMessage?.caption?.startsWith(tag)) continue
      downloadMediaMessage(msg, 'buffer', {}).then((buf) => { bytes += buf.length; received++ }, () => { errors++ })
        .finally(() => { lastDone = Date.now(); if (received + errors >= n) done() })
    }
  })
  cpuStart = process.cpuUsage()
  process.stdout.write('READY\n')
  await finished
  out('BENCH', { paired_s: pairedS, received, errors, bytes, last_done: lastDone / 1000 })
}

await (mode === 'send' ? send(rest) : receive(rest))
// Keep the socket open until the caller is done with what it measures: stdin closes then.
endOnStdinClose(client, cpuStart, stop)
