// The data dir's disk as a precondition of the worker: a write it cannot make stops the worker.
//
// Why fail-stop: a store whose write failed (journal.js) cannot honestly acknowledge anything after it
// (the kernel may have dropped the dirty pages), so it turns read-only. A worker that ran on with a
// read-only session store kept its WhatsApp connection, acknowledged nothing it could not store and sent
// nothing it could not commit, but also never recovered when space came back: messages sat in `sending`,
// inbound was no longer stored, and /health said ok (issue 20). Exiting instead is a crash, which the
// durability chain is built for: supervisord (then the watchdog, with its capped delay) starts the worker
// again, WhatsApp redelivers whatever was not acknowledged, and the gateway resends what WhatsApp did not
// ack, with the same ids. The probe below keeps a restarted worker from connecting while the disk is still
// full, so readiness stays false until it can really run.
//
// In the worker process main.js installs the handler (one fatal record, exit 1). Without one (unit tests
// of the stores) a failed store only turns read-only, as before.
import { randomBytes } from 'node:crypto'
import { open, unlink } from 'node:fs/promises'
import { join } from 'node:path'

// Errors that say the file system cannot take writes (full, over quota, read-only, failing), as opposed
// to a store that cannot be read (a corrupt file): the first stop the worker, the second fails the session.
const STORAGE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO'])

// 64 KiB: more than any one record the worker writes in the normal course (a message, a batch of keys),
// small enough that the probe never takes the last space a real write needed for more than an instant.
export const PROBE_BYTES = 64 * 1024

let handler = null

/** The worker's reaction to a write that failed: `fn(err, path)`, expected not to return (main.js). */
export function onWriteFailure (fn) {
  handler = fn
}

/** Reports a failed write of `path`; true when a handler took it (in the worker it does not return). */
export function writeFailed (err, path) {
  if (!handler) return false
  handler(err, path)
  return true
}

/** Whether `err` (or its cause) says the file system cannot take writes. */
export function isStorageError (err) {
  for (let e = err; e; e = e.cause) if (STORAGE_CODES.has(e.code)) return true
  return false
}

/**
 * Writes PROBE_BYTES (random: a compressing file system must store them) into `dir` and removes them;
 * rejects with the file system's error when it cannot. `sync` also forces them to the device, for file
 * systems that report a lack of space only then (NFS).
 */
export async function probeWritable (dir, { name = '.storage-probe', bytes = PROBE_BYTES, sync = true } = {}) {
  const path = join(dir, name)
  const fh = await open(path, 'w', 0o600)
  try {
    const buf = randomBytes(bytes)
    let written = 0
    while (written < buf.length) written += (await fh.write(buf, written, buf.length - written)).bytesWritten
    if (sync) await fh.datasync()
  } finally {
    await fh.close().catch(() => {})
    await unlink(path).catch(() => {})
  }
}

/**
 * The file system's error when `dir` refuses a probe write for lack of space, quota or inodes, else null: for
 * an error that does not say so itself (Node's recursive mkdir reports ENOENT when no inode was left).
 */
export async function storageRefusal (dir) {
  try {
    await probeWritable(dir, { sync: false })
    return null
  } catch (err) {
    return isStorageError(err) ? err : null
  }
}

/**
 * Probes `dir` every `everyMs` while the worker runs, so that a disk that filled up stops the worker even
 * when nothing was written since (readiness then says so, instead of a worker that fails at its next
 * message). `onFailure(err)` is called once.
 */
export function watchStorage ({ dir, everyMs, name, onFailure }) {
  if (!everyMs) return () => {}
  let busy = false
  let failed = false
  const timer = setInterval(() => {
    if (busy || failed) return
    busy = true
    probeWritable(dir, { name, sync: false })
      .catch((err) => { failed = true; onFailure(err) })
      .finally(() => { busy = false })
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
