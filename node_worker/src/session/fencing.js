// Sessions in PostgreSQL (auth-store-pg.js): the account's lease. The gateway attaches the account with
// a lease generation; this session writes and sends under it, checks it before every (re)connect, send
// and logout, and is fenced (state `fenced`) once it is lost: a write refused by the fence, a failed
// owner check, or 440 (another instance connected with these credentials). Nothing starts again until
// an attach with a newer generation.
import { checkLease, FencedError, writtenAfter } from '../auth-store-pg.js'
import { WorkerError } from '../errors.js'
import { SEND_RETRY, SESSION_ERROR, STATE } from '../states.js'

export class Fencing {
  constructor (session) {
    this.session = session
  }

  /**
   * Attach with sessions in PostgreSQL: the lease generation the gateway holds for this account. The
   * same generation again changes nothing; an older one is refused (409 stale_lease); a newer one is
   * adopted in place while this session's memory is still the truth, or else (fenced, or another owner
   * wrote since) the socket ends and the store is reloaded from PostgreSQL at the next resume.
   */
  adoptLease (generation) {
    const s = this.session
    return s.serial.run('lease', async () => {
      const previous = s.leaseGeneration
      if (previous !== null && generation < previous) {
        throw new WorkerError(409, SESSION_ERROR.STALE_LEASE, `The account is attached with lease generation ${previous}; ${generation} is older.`,
          { lease_generation: previous })
      }
      if (generation === previous) return
      s.leaseGeneration = generation
      if (s.store) {
        await this.adoptWithStore(generation, previous)
        return
      }
      s.log.info({ lease_generation: generation, previous }, 'session.lease_adopted')
      if (s.state === STATE.FENCED) {
        s.lastError = null
        s.lifecycle.setState(STATE.STOPPED)
      }
    })
  }

  // adoptLease with the store open (runs inside it).
  async adoptWithStore (generation, previous) {
    const s = this.session
    const store = s.store
    // New writes go out under the new generation; one still in flight under the old one may be
    // fenced now, which the checks below see.
    store.setGeneration(generation)
    await store.flush().catch(() => {})
    const stale = s.state === STATE.FENCED || store.fenced ||
      await writtenAfter(s.pg.pool, s.pg.account, previous).catch(() => true) // unknown: reload to be safe
    if (!stale) {
      s.log.info({ lease_generation: generation, previous }, 'session.lease_adopted')
      return
    }
    s.generation += 1 // the current socket's events are ignored from now on
    s.connection.clearTimers()
    s.connection.endSocket()
    s.store = null
    await store.close()
    s.lastError = null
    s.log.info({ lease_generation: generation, previous, reload: true }, 'session.lease_adopted')
    s.lifecycle.setState(STATE.STOPPED) // resume (attach) logs in again with what PostgreSQL holds
  }

  lease () {
    const s = this.session
    return { account: s.pg.account, instanceId: s.pg.instanceId, generation: s.leaseGeneration }
  }

  // PostgreSQL only: the owner check (a read) before every (re)connect, send and logout. A lost lease
  // fences the session and throws 409 not_owner; an unreachable database throws 503 store_unavailable.
  async assertOwner () {
    const s = this.session
    if (!s.pg) return
    if (s.state === STATE.FENCED || s.leaseGeneration === null) throw this.notOwner()
    try {
      await checkLease(s.pg.pool, this.lease())
    } catch (err) {
      if (err instanceof FencedError) {
        this.fence(err.message)
        throw this.notOwner()
      }
      throw s.stores.storeUnavailable(err)
    }
  }

  // The lease is lost (PostgreSQL only): a write refused by the fence, a failed owner check, or 440.
  // Stop at once WITHOUT logging out (the device stays linked, for the instance that owns the account
  // now): the socket ends, no reconnect is scheduled, sends are refused with 409 not_owner, and nothing
  // starts again until an attach with a newer generation (adoptLease). Synchronous, outside the
  // lifecycle queue: it may be called from inside a lifecycle operation.
  fence (reason) {
    const s = this.session
    if (s.closing || s.state === STATE.FENCED) return
    s.generation += 1 // the current socket's events (its own close included) are ignored from now on
    s.store?.markFenced?.(reason) // writes still coming from the retired socket are refused without a query
    s.connection.clearTimers()
    s.connection.endSocket()
    s.lastError = `not_owner: ${reason}`
    s.log.warn({ reason, lease_generation: s.leaseGeneration }, 'session.fenced')
    s.lifecycle.setState(STATE.FENCED, { lease_generation: s.leaseGeneration })
  }

  /** 409 not_owner: sessions in PostgreSQL, and this instance does not (or no longer) hold the account's lease. */
  notOwner () {
    const s = this.session
    const message = s.leaseGeneration === null
      ? 'This instance does not own the account: the gateway has not attached it with a lease generation.'
      : `This instance no longer owns the account (its lease generation ${s.leaseGeneration} was taken over); nothing was sent. ` +
        'It acts again only after an attach with a newer generation.'
    return new WorkerError(409, SEND_RETRY.NOT_OWNER, message, { state: s.state, lease_generation: s.leaseGeneration, last_error: s.lastError })
  }
}
