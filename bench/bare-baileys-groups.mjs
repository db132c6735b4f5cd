// The baseline for bench/groups.py: a bare Baileys client paired through the emulator creates a group of emulator
// contacts (sock.groupCreate) and sends text to it (sock.sendMessage), each send awaited to the server's
// <ack class=message>, as the worker does (the gateway's `sent`). Baileys is given the group's metadata from
// groupCreate's answer as `cachedGroupMetadata`, as its README advises for groups and as the worker does
// (session/group-metadata.js); without it relayMessage asks the server (a w:g2 iq) before every send.
//   node bench/bare-baileys-groups.mjs <emulator url> <account> <member,member,...> <tag>
// Prints 'READY ' + JSON {"paired_s", "group_id", "create_ms", "first_ms"}: the group created, then its first
// message sent alone and timed (Baileys fetches every member's devices and prekeys and sends each its sender key
// distribution). Then per stdin line 'run <concurrency> <n> <tag>': n messages "<tag> <i>" over that many lanes,
// answered 'RUN ' + JSON {"n", "concurrency", "errors", "send_start", "send_end" (epoch s), "cpu_ms"}. When stdin
// closes: 'CPU ' + JSON {"cpu_ms"} since READY, and exit.
import readline from 'node:readline'
import { connectBare, endOnStdinClose, hardStop, report, serverAcks } from './bare-client.mjs'

const [base, account, membersArg, tag] = process.argv.slice(2)
const stop = hardStop('bare-baileys-groups', 180)
const metadata = new Map() // group jid -> metadata, Baileys' cachedGroupMetadata
const { client, pairedS } = await connectBare(base, account, {
  prefix: 'wa-bench-bare-groups-',
  config: { cachedGroupMetadata: async (jid) => metadata.get(jid) }
})
const sock = client.sock
const acked = serverAcks(sock)
const sendAcked = async (jid, text) => { await acked((await sock.sendMessage(jid, { text })).key.id) }

let started = Date.now()
const group = await sock.groupCreate(`${tag} bench`, membersArg.split(',').map((p) => p.replace('+', '') + '@s.whatsapp.net'))
metadata.set(group.id, group)
const createMs = Date.now() - started
started = Date.now()
await sendAcked(group.id, `${tag} first`)
report('READY', { paired_s: pairedS, group_id: group.id, participants: group.participants.length, create_ms: createMs, first_ms: Date.now() - started })

async function run (concurrency, n, runTag) {
  let next = 0
  let errors = 0
  const cpu = process.cpuUsage()
  const start = Date.now()
  const lane = async () => {
    while (next < n) {
      const i = next++
      try { await sendAcked(group.id, `${runTag} ${i}`) } catch { errors++ }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const end = Date.now()
  const used = process.cpuUsage(cpu)
  report('RUN', { n, concurrency, errors, send_start: start / 1000, send_end: end / 1000, cpu_ms: (used.user + used.system) / 1000 })
}

// one run at a time, in the order asked (a line read during a run waits for it)
let queue = Promise.resolve()
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [word, c, n, runTag] = line.trim().split(/\s+/)
  if (word === 'run') queue = queue.then(() => run(Number(c), Number(n), runTag))
})
endOnStdinClose(client, process.cpuUsage(), stop)
