// What the bare Baileys baselines (bench/bare-baileys*.mjs) share: the
// emulator's control API, a Baileys client paired through it (the gateway's own node_modules/baileys, a file auth
// state as an app would use), the server's <ack class=message> per message id (what the worker's server-acks.js
// waits for: the gateway's `sent`), one-line JSON reports on stdout, and the end once the caller closes stdin.
import { pairDevice, tmpDir, trustEmulator } from '../node_worker/test/emulator-helpers.js'

/** `fetch` on the emulator's control API: {status, body} (body parsed when it is JSON). */
export const controlApi = (base) => async (method, p, body) => {
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

/** A new device of `account` paired through the emulator's phone, history sync settled: {client, pairedS}. */
export async function connectBare (base, account, { prefix = 'wa-bench-bare-', config = {} } = {}) {
  const api = controlApi(base)
  const root = (await api('GET', '/')).body.root_public_key
  const emu = { base, wsUrl: base.replace(/^http/, 'ws') + '/ws/chat', rootPublicKey: root, api }
  trustEmulator(emu)
  const t0 = Date.now()
  const { client } = await pairDevice(emu, account, { authDir: tmpDir(prefix), settle: true, config })
  return { client, pairedS: (Date.now() - t0) / 1000 }
}

/** `acked(id)`: settles when the server has acked message `id` (before or after the call). */
export function serverAcks (sock) {
  const acks = new Map() // id -> resolve, or true once acked before anyone waited
  sock.ws.on('CB:ack,class:message', (node) => {
    const id = node.attrs.id
    const waiter = acks.get(id)
    if (typeof waiter === 'function') waiter()
    acks.set(id, true)
  })
  return (id) => acks.get(id) === true ? Promise.resolve() : new Promise((resolve) => acks.set(id, resolve))
}

/** One report line: `<prefix> <json>`. */
export const report = (prefix, value) => process.stdout.write(`${prefix} ${JSON.stringify(value)}\n`)

/** Gives up (exit 2) after `seconds`, so that a stuck baseline never holds a bench run; cancelled by `end`. */
export const hardStop = (name, seconds) =>
  setTimeout(() => { console.error(`${name}: gave up after ${seconds} s`); process.exit(2) }, seconds * 1000)

/** Once the caller closes stdin: 'CPU {"cpu_ms"}' since `cpuStart` (process.cpuUsage), the socket closed, exit 0. */
export function endOnStdinClose (client, cpuStart, stop) {
  process.stdin.resume()
  process.stdin.on('end', async () => {
    const cpu = process.cpuUsage(cpuStart)
    report('CPU', { cpu_ms: (cpu.user + cpu.system) / 1000 })
    await client.end().catch(() => {})
    clearTimeout(stop)
    process.exit(0)
  })
}
