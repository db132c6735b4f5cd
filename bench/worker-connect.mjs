// The worker's CPU per connection attempt: N accounts linked on one AccountHost (this process) against the
// emulator (a child process), the host shut down as on SIGTERM, and a new one resuming all of them at once
// (WA_CONNECT_RATE=0). Usage: node bench/worker-connect.mjs [N=20]
// Prints {"n", "resume_s", "worker_cpu_ms_per_connect"}: what sizes WA_CONNECT_RATE's default (src/settings.js).
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { startEmulator, trustEmulator, tmpDir, until } from '../node_worker/test/emulator-helpers.js'
import { AccountHost } from '../node_worker/src/accounts.js'
import { makeLogger } from '../node_worker/lib/logger.js'
import { makeHandler } from '../node_worker/src/server.js'
import { readSettings } from '../node_worker/src/settings.js'
const N = Number(process.argv[2] || 20)
const emu = await startEmulator()
trustEmulator(emu)
const dataDir = tmpDir('wa-rb-')
const names = Array.from({ length: N }, (_, i) => `a${i}`)
fs.writeFileSync(path.join(dataDir, 'accounts.json'), JSON.stringify({ accounts: Object.fromEntries(names.map((n) => [n, { shard: 0 }])) }))
const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent', WA_CONNECT_RATE: '0', WA_LOG_LEVEL: 'warning' })
const quiet = makeLogger({ level: 'error', write: () => {} })
let host = new AccountHost({ settings, logger: quiet })
const handle = makeHandler({ host })
const call = (method, p, body) => handle(Object.assign(Readable.from(body === undefined ? [] : [Buffer.from(JSON.stringify(body))]), { method, headers: {} }), new URL(p, 'http://w'))
await host.resumeAll()
let next = 0
const lane = async () => {
  while (next < N) {
    const i = next++
    const st = await call('POST', `/accounts/${names[i]}/connect`, { wait_ms: 30000 })
    const scan = await emu.api('POST', '/phone/scan', { phone_number: `+1555008${String(i).padStart(4, '0')}`, qr: st.qr })
    if (scan.status !== 200) throw new Error(JSON.stringify(scan.body))
  }
}
await Promise.all(Array.from({ length: 4 }, lane))
const all = (h) => names.every((n) => h.get(n)?.session.state === 'connected')
await until(() => all(host), 300000, 'linked')
await new Promise((r) => setTimeout(r, 5000))
await host.shutdown()
host = new AccountHost({ settings, logger: quiet })
const c0 = process.cpuUsage()
const t0 = Date.now()
await host.resumeAll()
await until(() => all(host), 300000, 'resumed')
const c = process.cpuUsage(c0)
console.log(JSON.stringify({ n: N, resume_s: (Date.now() - t0) / 1000, worker_cpu_ms_per_connect: (c.user + c.system) / 1000 / N }))
await host.shutdown()
await emu.stop()
process.exit(0)
