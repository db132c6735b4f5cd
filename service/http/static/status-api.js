// The status page's session and its calls to the API (inlined before status.js, like every status-*.js part):
// the key, the account shown and the AbortController that ties everything to it (PAGE), the calls with the
// key's header (API.call), and the helpers every card uses to load (API.guard, API.soon). The key goes in
// X-API-Key only, never into a URL.
const PAGE = {
  key: null, // the API key while the page is open with one
  selected: null, // the account shown
  live: null, // the AbortController of the stream and of everything tied to the selected account; null: closed
  streamUp: false, // the event stream is read now (else the cards poll)
  expire: null, // set by status.js: closes the page when the key stops being accepted
  isOpen: () => PAGE.live !== null
};

const API = (function () {
  class ApiError extends Error {
    constructor (status, code, message) { super(message); this.status = status; this.code = code; }
  }
  const pending = {};

  // The gateway's error answer as an ApiError; a 401 while the page is open closes it (the key was revoked).
  async function failure (res) {
    let code = 'http_' + res.status;
    let message = 'HTTP ' + res.status;
    try {
      const e = (await res.json()).error;
      if (e && typeof e.message === 'string') { code = e.code; message = e.message; }
    } catch (e) { /* not the JSON error shape */ }
    const err = new ApiError(res.status, code, message);
    if (res.status === 401 && PAGE.isOpen() && PAGE.expire) PAGE.expire(err);
    return err;
  }

  // `raw`: the Response itself (for bytes), else its JSON body.
  async function call (method, path, body, raw) {
    const headers = { 'X-API-Key': PAGE.key };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'The gateway does not answer (' + e.message + ').');
    }
    if (!res.ok) throw await failure(res);
    return raw ? res : res.json();
  }

  const accountPath = (account, path) => '/accounts/' + encodeURIComponent(account) + path;

  // Runs a loader, showing its error in the card instead of throwing; stale answers (another account was
  // selected meanwhile, or the page was closed) are dropped by the loaders themselves.
  async function guard (errorId, fn) {
    try {
      const out = await fn();
      $(errorId).textContent = '';
      return out;
    } catch (e) {
      if (PAGE.isOpen()) $(errorId).textContent = e.message;
      return undefined;
    }
  }

  function soon (name, fn, ms) { // coalesces a burst of events into one reload
    if (pending[name]) return;
    pending[name] = setTimeout(() => { delete pending[name]; fn(); }, ms || 150);
  }

  return { ApiError, failure, call, accountPath, guard, soon };
})();
