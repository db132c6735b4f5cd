// The media server's TLS: Baileys uploads to and downloads from `https://{media_conn host}` (the scheme is
// fixed in getWAUploadToServer and getUrlFromDirectPath), so the emulator's media host needs a
// certificate the client trusts. The emulator keeps its own test CA (created once, kept in the media
// directory so a worker configured to trust it keeps trusting it across restarts) and issues a leaf for
// its media host at every start. node-forge builds the X.509; the RSA keys come from node's crypto.
import fs from 'node:fs'
import path from 'node:path'
import net from 'node:net'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import forge from 'node-forge'
import { writeFileAtomic } from './certs.js'

const DAY = 24 * 3600 * 1000
const rsaKeys = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
const serial = () => '01' + randomBytes(15).toString('hex') // positive, 16 bytes

const makeCert = ({ subject, issuer, publicKeyPem, signingKeyPem, days, extensions }) => {
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem)
  cert.serialNumber = serial()
  cert.validity.notBefore = new Date(Date.now() - 60 * 1000)
  cert.validity.notAfter = new Date(Date.now() + days * DAY)
  cert.setSubject([{ name: 'commonName', value: subject }])
  cert.setIssuer([{ name: 'commonName', value: issuer }])
  cert.setExtensions(extensions)
  cert.sign(forge.pki.privateKeyFromPem(signingKeyPem), forge.md.sha256.create())
  return forge.pki.certificateToPem(cert)
}

const CA_NAME = 'wa-gateway emulator media test CA (never trust outside the sandbox)'

/** the CA of `dir` (`media-ca.pem`, `media-ca.key`), created on first use; in memory when dir is null */
const loadOrCreateCa = (dir) => {
  const certFile = dir && path.join(dir, 'media-ca.pem')
  const keyFile = dir && path.join(dir, 'media-ca.key')
  if (dir && fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    return { certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8'), certFile }
  }
  const keys = rsaKeys()
  const certPem = makeCert({
    subject: CA_NAME,
    issuer: CA_NAME,
    publicKeyPem: keys.publicKey,
    signingKeyPem: keys.privateKey,
    days: 3650,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
    ]
  })
  if (dir) {
    writeFileAtomic(keyFile, keys.privateKey, 0o600)
    writeFileAtomic(certFile, certPem, 0o644)
  }
  return { certPem, keyPem: keys.privateKey, certFile }
}

/** creates (or keeps) the media CA of `dir` and returns its certificate file, for NODE_EXTRA_CA_CERTS */
export const ensureMediaCa = (dir) => loadOrCreateCa(dir).certFile

/**
 * the media server's TLS material: { ca (PEM, to trust), caFile (path or null), key, cert (leaf for
 * `host`, plus 127.0.0.1 and localhost) }
 */
export const mediaTls = (dir, host) => {
  const ca = loadOrCreateCa(dir)
  const leafKeys = rsaKeys()
  const names = new Set(['127.0.0.1', 'localhost', host].filter(Boolean))
  const altNames = [...names].map((n) => (net.isIP(n) ? { type: 7, ip: n } : { type: 2, value: n }))
  const cert = makeCert({
    subject: host || '127.0.0.1',
    issuer: CA_NAME,
    publicKeyPem: leafKeys.publicKey,
    signingKeyPem: ca.keyPem,
    days: 30,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames }
    ]
  })
  return { ca: ca.certPem, caFile: ca.certFile || null, key: leafKeys.privateKey, cert }
}
