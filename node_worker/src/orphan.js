// The parent watch moved to ../lib/orphan.js (shared by the worker and the emulator). This path stays
// only because tests/test_orphans.py imports it by name; drop it once that test imports lib/orphan.js.
export { PARENT_AT_START, PARENT_POLL_MS, watchParent } from '../lib/orphan.js'
