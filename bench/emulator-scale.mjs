// The emulator at scale, with bare Baileys clients (no gateway, no worker): N linked devices, then every one
// of them closed and dialled again at once or at a rate (a worker shard's restart), as the emulator sees it.
// Usage: node bench/emulator-scale.mjs [--devices 300] [--rates 40,0] [--link-concurrency 8] [--idle 10] [--dir DIR]
// With --dir the emulator's state and the devices' auth states stay in DIR: a later run links only the devices
// it does not hold yet (linking is the slow part: a minute per 20 devices on a busy 2-core machine).
// Prints one line 'SCALE ' + JSON: the emulator's CPU per connect (ms), RSS per open connection (KiB), the
// connect time of each device from its dial (p50/p99, ms), the storm's length, the idle CPU with every device
// connected, and the emulator's GET /stats. Asserts nothing; not part of `make test` or `make bench`.
import fs from 'node:fs'
import path from 'node:path'
import { openClient, startEmulator, tmpDir, trustEmulator } from '../node_worker/test/emulator-helpers.js'

const raw = (name) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}
const arg = (name, fallback) => raw(name) === undefined ? fallback : Number(raw(name))
const devices = arg('devices', 300)
const rates = (raw('rates') ?? '0').split(',').map(Number) // dials per second in each storm; 0: all at once
const linkConcurrency = arg('link-concurrency', 8)
const idleS = arg('idle', 10)
const keepAliveMs = arg('keepalive-ms', 30000)

const TICK = 100 // clock ticks per second (/proc/<pid>/stat)
const cpuMs = (pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / TICK // utime + stime
}
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const pct = (values, p) => {
  const s = [...values].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null
}
const phoneOf = (i) => `+1555066${String(i).padStart(4, '0')}`
const config = { keepAliveIntervalMs: keepAliveMs, connectTimeoutMs: 60000, defaultQueryTimeoutMs: 60000 }

const dir = raw('dir') ? path.resolve(raw('dir')) : tmpDir('wa-emu-scale-')
fs.mkdirSync(dir, { recursive: true })
const deviceDir = (i) => path.join(dir, `dev-${i}`)
const linked = (i) => {
  try { return !!JSON.parse(fs.readFileSync(path.join(deviceDir(i), 'creds.json'), 'utf8')).me } catch { return false }
}
const emu = await startEmulator({ env: { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json'), WA_EMULATOR_LOG_LEVEL: process.env.WA_EMULATOR_LOG_LEVEL || 'info' } })
// the test helper keeps every stdout line: at this scale that is memory for nothing
emu.lines.length = 0
emu.proc.stdout.on('data', () => { emu.lines.length = 0 })
trustEmulator(emu)
const pid = emu.proc.pid
const report = { devices, link_concurrency: linkConcurrency }

// as pairDevice (node_worker/test/emulator-helpers.js) with the patience a busy machine needs
const link = async (phone, authDir) => {
  fs.rmSync(authDir, { recursive: true, force: true })
  const opened = []
  try {
    const first = await openClient(emu, authDir, config)
    opened.push(first)
    const qr = await first.waitFor((r) => r.qrs[0], 60000, 'qr')
    const scan = await emu.api('POST', '/phone/scan', { phone_number: phone, qr })
    if (scan.status !== 200) throw new Error(`scan failed: ${scan.status} ${JSON.stringify(scan.body)}`)
    await first.waitClose(60000)
    await first.flushCreds()
    const client = await openClient(emu, authDir, config)
    opened.push(client)
    await client.waitOpen(60000)
    // the phone's history sync ends the first login (else the next one waits for it)
    await client.waitFor((r) => r.history.length > 0, 60000, 'history sync')
    return { client, authDir }
  } catch (err) {
    for (const c of opened) await c.end().catch(() => {})
    throw err
  }
}

// 1. link every device (a worker's POST /accounts + scan, without the worker)
const authDirs = []
let next = 0
const linkStart = Date.now()
const cpuLink0 = cpuMs(pid)
const lane = async () => {
  while (next < devices) {
    const i = next++
    authDirs[i] = deviceDir(i)
    if (linked(i)) continue
    // a busy machine may miss the emulator's 10 s pairing query: that device links again from the start
    for (let attempt = 1; ; attempt++) {
      try {
        const { client } = await link(phoneOf(i), deviceDir(i))
        await client.end()
        break
      } catch (err) {
        process.stderr.write(`link ${i} attempt ${attempt}: ${err.message}\n`)
        if (attempt === 3) throw err
      }
    }
    if ((i + 1) % 50 === 0) process.stderr.write(`linked ${i + 1}/${devices} in ${((Date.now() - linkStart) / 1000).toFixed(0)} s\n`)
  }
}
await Promise.all(Array.from({ length: linkConcurrency }, lane))
report.link_s = (Date.now() - linkStart) / 1000
report.link_cpu_ms_per_device = (cpuMs(pid) - cpuLink0) / devices
await sleep(2000)
const rssClosed = rssKiB(pid)
report.rss_mb_all_closed = rssClosed / 1024
report.state_file_mb = fs.statSync(path.join(dir, 'state.json')).size / 2 ** 20

// 2. the storms: every device dials again, all at once or `rate` per second, once per rate of --rates
const storm = async (rate) => {
  const out = { rate }
  await emu.api('POST', '/stats/reset')
  const cpu0 = cpuMs(pid)
  const clientCpu0 = process.cpuUsage()
  const stormStart = Date.now()
  const clients = []
  const connectMs = []
  await Promise.all(authDirs.map(async (authDir, i) => {
    if (rate > 0) await sleep(i * 1000 / rate)
    const dialled = Date.now()
    const client = await openClient(emu, authDir, config)
    clients.push(client)
    await client.waitOpen(120000)
    connectMs.push(Date.now() - dialled)
  }))
  out.storm_s = (Date.now() - stormStart) / 1000
  out.connect_ms = { p50: pct(connectMs, 0.5), p99: pct(connectMs, 0.99), max: Math.max(...connectMs) }
  out.cpu_ms_per_connect = (cpuMs(pid) - cpu0) / devices
  // the clients' side of a login (Noise, login, prekey count, the first queries): about a worker's, without its journal
  const clientCpu = process.cpuUsage(clientCpu0)
  out.client_cpu_ms_per_connect = (clientCpu.user + clientCpu.system) / 1000 / devices
  await sleep(3000)
  const rssOpen = rssKiB(pid)
  out.rss_mb_all_open = rssOpen / 1024
  out.rss_kib_per_connection = (rssOpen - rssClosed) / devices
  // idle, every device connected (their keep-alive pings only)
  const idle0 = cpuMs(pid)
  await sleep(idleS * 1000)
  out.idle_cpu_pct = (cpuMs(pid) - idle0) / (idleS * 10)
  out.stats = (await emu.api('GET', '/stats')).body
  await Promise.all(clients.map((c) => c.end().catch(() => {})))
  await sleep(2000)
  return out
}
report.storms = []
for (const rate of rates) {
  report.storms.push(await storm(rate))
  process.stderr.write(`storm ${JSON.stringify(report.storms.at(-1))}\n`)
}
process.stdout.write('SCALE ' + JSON.stringify(report) + '\n')
await emu.stop()
process.exit(0)
