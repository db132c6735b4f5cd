// Exit with supervisord. supervisord puts each program in a process group of its own, so when it dies
// without stopping them (kill -9, the OOM killer) nothing else stops them: a worker would run on for ever,
// holding its WhatsApp connections beside the next stack. Node has no prctl(PR_SET_PDEATHSIG), so the
// worker and the emulator poll their parent pid: when it is no longer the one they started with (they were
// re-parented to init or to the launcher, a subreaper), they shut down as on SIGTERM. A program started by
// hand or by a test keeps its parent and is never affected. The Python programs do the same with prctl
// (service/orphans.py).

// Imported first by the entry points, so this is the parent at start even before the heavy imports load.
export const PARENT_AT_START = process.ppid
export const PARENT_POLL_MS = 250

// Calls onOrphan({ parentAtStart, parentNow }) once, within intervalMs of the parent changing. The timer
// is unref'd (it never keeps the process alive); the returned function cancels it.
export function watchParent (onOrphan, { parentAtStart = PARENT_AT_START, intervalMs = PARENT_POLL_MS,
  currentParent = () => process.ppid } = {}) {
  const timer = setInterval(() => {
    const parentNow = currentParent()
    if (parentNow === parentAtStart) return
    clearInterval(timer)
    onOrphan({ parentAtStart, parentNow })
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
