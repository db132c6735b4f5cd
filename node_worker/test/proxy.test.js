// src/proxy.js: which proxy URLs the worker takes and how it shows them (the vectors are shared with the
// gateway's tests/unit/test_proxy_url.py), the agent each scheme gets, the account's own setting in
// accounts.json over WA_PROXY_URL, and WA_PROXY_URL as a start-up setting (a bad one is a SettingsError
// that never repeats the password).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HttpsProxyAgent } from 'https-proxy-agent'
import { SocksProxyAgent } from 'socks-proxy-agent'
import { connectionProxy, parseProxyUrl, ProxyUrlError } from '../src/proxy.js'
import { readSettings, SettingsError } from '../src/settings.js'

const VECTORS = JSON.parse(fs.readFileSync(new URL('../../tests/fixtures/proxy_urls.json', import.meta.url), 'utf8'))

test('valid proxy URLs parse to scheme, host, port and a redacted form without credentials', () => {
  for (const v of VECTORS.valid) {
    const p = parseProxyUrl(v.url)
    assert.deepEqual({ scheme: p.scheme, host: p.host, port: p.port, redacted: p.redacted },
      { scheme: v.scheme, host: v.host, port: v.port, redacted: v.redacted }, v.url)
    assert.ok(!p.redacted.includes('s3cret') && !p.redacted.includes('user'), p.redacted)
  }
})

test('invalid proxy URLs are refused with a message that never repeats the password', () => {
  for (const v of VECTORS.invalid) {
    assert.throws(() => parseProxyUrl(v.url), (err) => {
      assert.ok(err instanceof ProxyUrlError, `${v.url}: ${err}`)
      assert.ok(!err.message.includes('s3cret'), err.message)
      return true
    }, `${v.url} (${v.why})`)
  }
})

const withRegistry = (accounts) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-test-'))
  fs.writeFileSync(path.join(dir, 'accounts.json'), JSON.stringify({ version: 1, accounts }))
  return dir
}

test('the worker-wide proxy, an account\'s own, and "direct" over a worker-wide one', () => {
  const dataDir = withRegistry({
    default: { shard: 0 },
    own: { shard: 0, proxy: 'socks5://u:s3cret@127.0.0.1:1080' },
    plain: { shard: 0, proxy: 'direct' },
    broken: { shard: 0, proxy: 'socks5://u:s3cret@127.0.0.1' }
  })
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_PROXY_URL: 'http://u:s3cret@127.0.0.1:3128' })
  const inherited = connectionProxy(settings, 'default')
  assert.equal(inherited.redacted, 'http://***@127.0.0.1:3128')
  assert.ok(inherited.agent instanceof HttpsProxyAgent)
  const own = connectionProxy(settings, 'own')
  assert.equal(own.redacted, 'socks5://***@127.0.0.1:1080')
  assert.ok(own.agent instanceof SocksProxyAgent)
  assert.equal(connectionProxy(settings, 'plain'), null)
  assert.equal(connectionProxy(settings, 'not-listed').redacted, 'http://***@127.0.0.1:3128')
  // an account given a proxy never connects around it: a bad one throws (the gateway refuses it before)
  assert.throws(() => connectionProxy(settings, 'broken'), (err) => err instanceof ProxyUrlError && !err.message.includes('s3cret'))
  const none = readSettings({ WA_DATA_DIR: dataDir })
  assert.equal(none.proxy, null)
  assert.equal(connectionProxy(none, 'default'), null)
  assert.equal(connectionProxy(none, 'own').redacted, 'socks5://***@127.0.0.1:1080')
  fs.rmSync(dataDir, { recursive: true })
})

test('a bad WA_PROXY_URL is a settings error naming the setting, without the password', () => {
  for (const raw of ['https://u:s3cret@proxy:443', 'socks5://u:s3cret@proxy', 'u:s3cret@proxy:3128']) {
    assert.throws(() => readSettings({ WA_PROXY_URL: raw }), (err) => {
      assert.ok(err instanceof SettingsError, String(err))
      assert.match(err.message, /^WA_PROXY_URL /)
      assert.ok(!err.message.includes('s3cret'), err.message)
      return true
    }, raw)
  }
  assert.equal(readSettings({ WA_PROXY_URL: '  ' }).proxy, null)
})

test('the socket config hands Baileys the proxy: agent (websocket), fetchAgent (uploads), options.dispatcher (downloads)', async () => {
  const { Connection } = await import('../src/session/connection.js')
  const { makeLogger } = await import('../lib/logger.js')
  const dataDir = withRegistry({ default: { shard: 0 }, plain: { shard: 0, proxy: 'direct' } })
  const store = { state: { creds: {}, keys: { get: async () => ({}), set: async () => {} } } }
  const logger = makeLogger({ level: 'error', format: 'json' })
  const session = (account) => ({ account, settings: readSettings({ WA_DATA_DIR: dataDir, WA_PROXY_URL: 'socks5h://u:s3cret@127.0.0.1:1080' }) })
  const proxied = session('default')
  const config = new Connection(proxied).socketConfig(store, logger)
  assert.equal(proxied.proxy.redacted, 'socks5h://***@127.0.0.1:1080')
  assert.ok(config.agent instanceof SocksProxyAgent)
  assert.equal(config.fetchAgent, config.agent)
  assert.equal(config.options.dispatcher, proxied.proxy.dispatcher)
  const direct = session('plain')
  const plain = new Connection(direct).socketConfig(store, logger)
  assert.equal(direct.proxy, null)
  assert.equal(plain.agent, undefined)
  assert.equal(plain.fetchAgent, undefined)
  assert.ok(!('options' in plain), 'Baileys keeps its default options')
  fs.rmSync(dataDir, { recursive: true })
})
