// The status page. It reads this gateway's API with the key the user gives once (kept in this tab's
// sessionStorage). Every call sends X-API-Key; the live event stream is read with fetch() and parsed here,
// because an EventSource cannot send a header and the key must never go into a URL. Text from the API is
// set with textContent and attributes only (never innerHTML): nothing a contact writes is parsed as HTML.
(function () {
  const STORE = 'wa-gateway-key'; // the same as /docs: one key per tab
  const QR_REFRESH_MS = 5000; // while a QR shows: the worker emits no event when it rotates (the state stays qr)
  const POLL_MS = 15000; // health and dead letters have no events; the rest too while the stream is down
  const LIMIT = 20;
  const MAX_EVENTS = 50;
  const S = STATE_NAMES.worker; // service/states.py, put before this script by views/static_page.py
  const CONNECTABLE = [S.STOPPED, S.LOGGED_OUT, S.FAILED];
  const TONE = {
    connected: 'ok', delivered: 'ok', read: 'ok', RUNNING: 'ok', ok: 'ok', writable: 'ok', live: 'ok',
    sent: 'info', sending: 'info', connecting: 'info', STARTING: 'info', pending: 'info',
    qr: 'warn', pairing_code: 'warn', degraded: 'warn', BACKOFF: 'warn', STOPPING: 'warn', reconnecting: 'warn', queued: 'warn',
    failed: 'bad', whatsapp_unreachable: 'bad', FATAL: 'bad', EXITED: 'bad', UNKNOWN: 'bad', logged_out: 'bad', 'not writable': 'bad',
    offline: 'idle', stopped: 'idle', inactive: 'idle'
  };

  // A table body's rows, or one muted row saying there is nothing.
  const rowsOf = (id, rows, empty) => {
    const columns = $(id).closest('table').querySelectorAll('thead th').length;
    $(id).replaceChildren(...(rows.length ? rows : [el('tr', { class: 'empty' }, el('td', { colspan: String(columns), class: 'muted', text: empty }))]));
  };
  const badge = (text, tone) => el('span', { class: 'badge ' + (tone || TONE[text] || ''), text: String(text) });
  const when = (iso) => {
    if (!iso) return '—';
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  };
  const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  let key = null; // the API key while the page is open with one
  let selected = null; // the account shown
  let state = null; // its WhatsApp state
  let shards = {}; // account name -> its row in GET /accounts
  let live = null; // the AbortController of the stream (and of everything tied to the selected account)
  let lastEventId = null; // the seq of the last event read from the stream: a reconnect resumes after it
  let streamUp = false;
  let timers = [];
  let qrText = null;
  let qrUrl = null;
  const pending = {};

  class ApiError extends Error {
    constructor (status, code, message) { super(message); this.status = status; this.code = code; }
  }

  // --- the API -------------------------------------------------------------------------------------------
  async function failure (res) {
    let code = 'http_' + res.status;
    let message = 'HTTP ' + res.status;
    try {
      const e = (await res.json()).error;
      if (e && typeof e.message === 'string') { code = e.code; message = e.message; }
    } catch (e) { /* not the JSON error shape */ }
    const err = new ApiError(res.status, code, message);
    if (res.status === 401 && live !== null) expire(err);
    return err;
  }

  async function call (method, path, body, raw) {
    const headers = { 'X-API-Key': key };
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
      if (live !== null) $(errorId).textContent = e.message;
      return undefined;
    }
  }

  function soon (name, fn, ms) { // coalesces a burst of events into one reload
    if (pending[name]) return;
    pending[name] = setTimeout(() => { delete pending[name]; fn(); }, ms || 150);
  }

  // --- the live stream -----------------------------------------------------------------------------------
  function showStream (text) {
    const node = $('stream-state');
    node.textContent = text;
    node.className = 'badge ' + (TONE[text] || 'info');
  }

  async function follow (account, signal) {
    let delay = 1000;
    while (!signal.aborted) {
      showStream('connecting');
      try {
        const headers = { 'X-API-Key': key, Accept: 'text/event-stream' };
        if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
        const res = await fetch(accountPath(account, '/events/stream'), { headers, cache: 'no-store', signal });
        if (!res.ok) {
          const err = await failure(res);
          if (signal.aborted) return; // a 401 closed the page
          if (res.status < 500) { showStream('stopped'); $('account-error').textContent = 'Live events: ' + err.message; return; }
          throw err;
        }
        streamUp = true;
        showStream('live');
        delay = 1000;
        refreshAccount(); refreshAccounts(); refreshOut(); refreshIn(); // what happened before the stream
        const feed = sseParser((msg) => {
          if (signal.aborted) return;
          if (msg.id) lastEventId = msg.id;
          handle(msg);
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed(value);
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      streamUp = false;
      showStream('reconnecting');
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 8000);
    }
  }

  function handle (msg) {
    let event;
    try { event = JSON.parse(msg.data); } catch (e) { return; }
    const data = event.data || {};
    logEvent(msg.type, msg.id, event, data);
    if (msg.type === 'session.status') {
      applyState(data.state, data.phone_number, data.pairing_code);
      soon('account', refreshAccount); soon('accounts', refreshAccounts); soon('health', refreshHealth);
    } else if (msg.type === 'message.received' || msg.type === 'media.stored' || msg.type === 'media.failed') {
      soon('in', refreshIn); soon('out', refreshOut); // media.* events are of either direction
    } else if (msg.type === 'message.status') {
      soon('out', refreshOut);
    } else if (CONVO.EVENTS.includes(msg.type)) { // a contact reacted, edited or deleted (status-conversation.js)
      soon('in', refreshIn); soon('out', refreshOut);
    }
    soon('dead', refreshDead, 2000); // an event goes to the webhooks: a refused one is a dead letter soon after
  }

  // One line per event: its type and what changed; never a message's text, never a QR code.
  function logEvent (type, seq, event, data) {
    let what = '';
    if (type === 'session.status') what = (data.state || '?') + (data.phone_number ? ' ' + data.phone_number : '');
    else if (type === 'message.status') what = (data.status || '?') + ' to ' + (data.phone_number || data.group_id || '?');
    else if (type === 'message.received') what = (data.kind || 'message') + ' from ' + (data.phone_number || data.lid || '?') + (data.group_id ? ' in ' + data.group_id : '');
    else if (CONVO.EVENTS.includes(type) || type === 'presence') what = (data.state ? data.state + ' ' : '') + 'from ' + (data.phone_number || data.lid || '?');
    const item = el('li', { 'data-type': type, 'data-seq': seq || '' },
      el('span', { class: 'muted', text: when(event.timestamp) + ' ' }),
      el('strong', { text: type }), ' ', el('span', { class: 'what', text: what }));
    const list = $('events');
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  // --- accounts ------------------------------------------------------------------------------------------
  function renderAccounts (accounts) {
    shards = {};
    $('accounts').replaceChildren(...accounts.map((a) => {
      shards[a.name] = a;
      const tr = el('tr', { 'data-account': a.name, class: a.name === selected ? 'selected' : '' },
        el('td', {}, el('button', { type: 'button', class: 'link', text: a.name })),
        el('td', { class: 'state' }, badge(a.state || 'unknown')),
        el('td', { class: 'num phone', text: a.phone_number || '—' }));
      tr.addEventListener('click', () => select(a.name));
      return tr;
    }));
  }

  async function refreshAccounts () {
    const body = await guard('accounts-error', () => call('GET', '/accounts'));
    if (body && live !== null) renderAccounts(body.accounts);
  }

  // The selected account's state as the stream or an answer tells it: badges, the Connect button, the QR.
  function applyState (newState, phone, code) {
    if (!newState) return;
    const was = state;
    state = newState;
    $('account-state').replaceChildren(badge(state));
    const row = document.querySelector('tr[data-account="' + CSS.escape(selected) + '"]');
    if (row) {
      row.querySelector('.state').replaceChildren(badge(state));
      if (phone !== undefined) row.querySelector('.phone').textContent = phone || '—';
    }
    if (phone !== undefined && $('d-phone')) $('d-phone').textContent = phone || '—';
    $('connect').hidden = !CONNECTABLE.includes(state);
    PAIRING.apply(CONNECTABLE.includes(state), state === S.PAIRING_CODE, code); // status-pairing.js
    if (state === S.QR) { if (was !== S.QR) updateQr(); } else hideQr();
  }

  function detail (list, label, value, id) {
    list.append(el('dt', { text: label }), el('dd', id ? { id, text: value } : { text: value }));
  }

  async function refreshAccount () {
    const account = selected;
    const s = await guard('account-error', () => call('GET', accountPath(account, '/status')));
    if (!s || account !== selected || live === null) return;
    delete s.qr; delete s.qr_image; // the QR is shown as an image only
    const list = $('account-details');
    list.replaceChildren();
    detail(list, 'Phone number', s.phone_number || '—', 'd-phone');
    detail(list, 'Name', s.name || '—');
    if (shards[account]) detail(list, 'Worker shard', String(shards[account].shard));
    if (s.link) detail(list, 'Link', s.link.alive ? 'alive (last frame ' + s.link.last_frame_age_ms + ' ms ago)' : 'dead: ' + (s.link.reason || ''));
    if (s.reconnect && s.reconnect.scheduled) detail(list, 'Reconnect', 'attempt ' + s.reconnect.attempt + ', next in ' + Math.round((s.reconnect.next_retry_ms || 0) / 1000) + ' s');
    // WhatsApp cannot be reached: why, and what to check (the worker keeps retrying).
    if (s.unreachable) detail(list, 'Unreachable', s.unreachable.cause + ' (' + s.unreachable.attempts + ' attempts since ' + when(s.unreachable.since) + '): ' + s.unreachable.detail + '. ' + s.unreachable.hint, 'd-unreachable');
    detail(list, 'Last error', s.last_error || '—');
    applyState(s.state, s.phone_number, s.pairing_code);
  }

  function hideQr () {
    $('qr-box').hidden = true;
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    $('qr').removeAttribute('src');
    qrText = null; qrUrl = null;
  }

  async function updateQr () {
    const account = selected;
    if (state !== S.QR) { hideQr(); return; }
    $('qr-box').hidden = false;
    try {
      const svg = await (await call('GET', accountPath(account, '/qr?format=svg'), undefined, true)).text();
      if (account !== selected || state !== S.QR || svg === qrText) return;
      qrText = svg;
      const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
      $('qr').src = url;
      if (qrUrl) URL.revokeObjectURL(qrUrl);
      qrUrl = url;
      $('qr-updated').textContent = 'Shown since ' + new Date().toLocaleTimeString() + '.';
    } catch (e) {
      if (e.status === 409) soon('account', refreshAccount); // the state moved on
      else if (live !== null) $('account-error').textContent = 'QR code: ' + e.message;
    }
  }

  async function connect () {
    const button = $('connect');
    button.disabled = true;
    $('account-error').textContent = '';
    try {
      const s = await call('POST', accountPath(selected, '/connect'), PAIRING.connectBody());
      applyState(s.state, s.phone_number, s.pairing_code);
    } catch (e) {
      $('account-error').textContent = 'Connect: ' + e.message;
    } finally {
      button.disabled = false;
    }
  }

  // --- health --------------------------------------------------------------------------------------------
  async function refreshHealth () {
    const h = await guard('health-error', () => call('GET', '/health'));
    if (!h || live === null) return;
    $('health-status').replaceChildren(badge(h.status));
    $('health-reasons').replaceChildren(...h.reasons.map((r) => el('li', { text: r })));
    const rows = [];
    const row = (name, st, details, tone) => rows.push(el('tr', { 'data-program': name },
      el('td', { text: name }), el('td', {}, badge(st, tone)), el('td', { class: 'text', text: details })));
    const mb = (bytes) => bytes == null ? '' : Math.round(bytes / 1048576) + ' MB';
    const parts = (...xs) => xs.filter((x) => x !== '' && x != null).join(', ');
    row('gateway', 'RUNNING', parts('version ' + h.version, 'up ' + Math.round(h.uptime_seconds) + ' s'));
    const w = h.worker;
    row('worker', w.state, parts(w.pid ? 'pid ' + w.pid : '', w.restarts != null ? w.restarts + ' restarts' : '',
      mb(w.rss_bytes), w.watchdog && w.watchdog.last_error ? 'watchdog: ' + w.watchdog.last_error : ''));
    for (const s of h.shards || []) {
      row('shard ' + s.name, s.state, parts(s.pid ? 'pid ' + s.pid : '', s.restarts != null ? s.restarts + ' restarts' : '',
        mb(s.rss_bytes), s.accounts ? 'accounts: ' + s.accounts.join(' ') : ''));
    }
    const wa = h.whatsapp;
    row('whatsapp (default)', wa.state, wa.unreachable ? 'cannot be reached: ' + wa.unreachable.cause + (wa.unreachable.detail ? ' (' + wa.unreachable.detail + ')' : '')
      : wa.link ? (wa.link.alive ? 'link alive' : 'link dead') : '');
    row('accounts', String(Object.values(h.accounts || {}).reduce((a, b) => a + b, 0)),
      Object.entries(h.accounts || {}).map(([k, v]) => v + ' ' + k).join(', '), 'info');
    if (h.store) row('store', h.store.writable ? 'writable' : 'not writable', h.store.error || 'a write committed just now');
    for (const [name, hook] of Object.entries(h.webhooks || {})) {
      const st = !hook.active ? 'inactive' : hook.failed ? 'failed' : 'ok';
      row('webhook ' + (hook.url || name), st, parts(hook.account ? 'account ' + hook.account : '',
        hook.pending + ' pending', hook.failed + ' failed'));
    }
    $('health').replaceChildren(...rows);
  }

  // --- messages ------------------------------------------------------------------------------------------
  // A message's text with its conversation (status-conversation.js: quote, reactions, edited, deleted), or its
  // media (status-media.js) fetched through the API with the key, by the message's own id (never a URL taken
  // from the answer).
  function messageCell (m, account) {
    const fetcher = () => call('GET', accountPath(account, '/media/' + encodeURIComponent(m.id)), undefined, true);
    return CONVO.cell(m, m.media ? MEDIA.cell(m.id, m.media, fetcher) : null,
      (id) => call('GET', accountPath(account, '/messages/' + encodeURIComponent(id))));
  }

  // One direction's newest messages, with what the conversation knows (the contacts' reactions: the event log).
  async function listed (account, direction) {
    const [body, reacted] = await Promise.all([
      call('GET', accountPath(account, '/messages?direction=' + direction + '&limit=' + LIMIT)),
      CONVO.sync((after, limit) => call('GET', accountPath(account, '/events?types=message.reaction&limit=' + limit + '&after=' + after)))]);
    if (account === selected && live !== null && (CONVO.learn(body.messages) || reacted)) {
      if (direction === 'out') soon('in', refreshIn); else soon('out', refreshOut); // it may show there too
    }
    return body;
  }

  async function refreshOut () {
    const account = selected;
    const body = await guard('out-error', () => listed(account, 'out'));
    if (!body || account !== selected || live === null) return;
    rowsOf('out', body.messages.map((m) => el('tr', { 'data-id': m.id, 'data-type': m.type || 'text' },
      el('td', { text: when(m.created_at) }),
      el('td', { class: 'num', text: m.phone_number || m.group_id || '—' }),
      el('td', {}, badge(m.status), m.reason || m.wait_reason ? el('span', { class: 'muted', text: ' ' + (m.reason || m.wait_reason) }) : null),
      messageCell(m, account))), 'Nothing sent yet.');
  }

  async function refreshIn () {
    const account = selected;
    const body = await guard('in-error', () => listed(account, 'in'));
    if (!body || account !== selected || live === null) return;
    rowsOf('in', body.messages.map((m) => el('tr', { 'data-id': m.id, 'data-type': m.type || m.kind },
      el('td', { text: when(m.received_at || m.timestamp) }),
      el('td', { class: 'num', text: (m.phone_number || m.lid || '?') + (m.push_name ? ' (' + m.push_name + ')' : '') +
        (m.group_id ? ' in ' + m.group_id : '') }),
      el('td', { text: m.kind }),
      messageCell(m, account))), 'Nothing received yet.');
  }

  async function send (ev) {
    ev.preventDefault();
    const button = $('send-button');
    const result = $('send-result');
    button.disabled = true;
    result.className = '';
    result.textContent = 'Sending…';
    try {
      const m = await call('POST', accountPath(selected, '/send'), { phone_number: $('send-to').value.trim(), message: $('send-text').value });
      result.className = 'ok-text';
      result.textContent = 'Accepted: message ' + m.id + ' is ' + m.status + (m.reason ? ' (' + m.reason + ')' : '') + '.';
      $('send-text').value = '';
    } catch (e) {
      result.className = 'error';
      result.textContent = 'Not sent: ' + e.message;
    } finally {
      button.disabled = false;
    }
    refreshOut();
  }

  // --- dead letters --------------------------------------------------------------------------------------
  async function refreshDead () {
    const body = await guard('dead-error', () => call('GET', '/webhooks/deliveries?status=failed&limit=' + LIMIT));
    if (!body || live === null) return;
    rowsOf('dead', body.deliveries.map((d) => {
      const button = el('button', { type: 'button', class: 'redrive', text: 'Redrive' });
      button.addEventListener('click', () => redrive(d.id, button));
      return el('tr', { 'data-id': d.id },
        el('td', { text: when(d.failed_at) }),
        el('td', { text: d.event_type + (d.subject ? ' ' + d.subject : '') }),
        el('td', { class: 'text', text: d.endpoint }),
        el('td', { class: 'text', text: (d.last_error || '') + ' (' + d.attempts + (d.attempts === 1 ? ' attempt)' : ' attempts)') }),
        el('td', {}, button));
    }), 'No failed deliveries.');
  }

  async function redrive (id, button) {
    button.disabled = true;
    const result = $('dead-result');
    try {
      const d = await call('POST', '/webhooks/deliveries/' + encodeURIComponent(id) + '/retry');
      result.className = 'ok-text';
      result.textContent = 'Redriven: delivery ' + d.id + ' is ' + d.status + ' again.';
    } catch (e) {
      result.className = 'error';
      result.textContent = 'Redrive failed: ' + e.message;
    }
    refreshDead();
  }

  // --- opening and closing -------------------------------------------------------------------------------
  function select (account) {
    if (live !== null) live.abort();
    live = new AbortController();
    selected = account;
    state = null;
    CONVO.reset();
    lastEventId = null; // another account's stream starts from now
    hideQr();
    $('account-name').textContent = account;
    $('account-state').replaceChildren();
    $('account-details').replaceChildren();
    $('account-error').textContent = '';
    $('connect').hidden = true;
    $('out').replaceChildren(); $('in').replaceChildren(); $('events').replaceChildren();
    for (const row of document.querySelectorAll('tr[data-account]')) {
      row.classList.toggle('selected', row.dataset.account === account);
    }
    refreshAccount(); refreshOut(); refreshIn();
    follow(account, live.signal);
  }

  function say (text) { $('login-state').textContent = text; }

  async function open (candidate) {
    if (!candidate) { say('Enter the API key.'); return; }
    key = candidate;
    say('Checking the key…');
    let body;
    try {
      body = await call('GET', '/accounts');
    } catch (e) {
      key = null;
      sessionStorage.removeItem(STORE);
      if (e.status === 401) say('The key was refused: ' + e.message);
      else if (e.status === 403) say('This key is scoped to one account; the status page needs an admin key. ' + e.message);
      else say('Could not check the key: ' + e.message);
      return;
    }
    sessionStorage.setItem(STORE, key);
    $('key').value = '';
    say('');
    $('login').hidden = true;
    $('logout').hidden = false;
    $('app').hidden = false;
    live = new AbortController(); // select() replaces it; the page counts as open from here on
    renderAccounts(body.accounts);
    const names = body.accounts.map((a) => a.name);
    select(names.includes('default') ? 'default' : names[0]);
    refreshHealth(); refreshDead();
    timers.push(setInterval(() => { if (state === S.QR) updateQr(); }, QR_REFRESH_MS));
    timers.push(setInterval(() => {
      refreshHealth(); refreshDead(); refreshAccounts();
      if (!streamUp) { refreshAccount(); refreshOut(); refreshIn(); }
    }, POLL_MS));
  }

  function close (message) {
    if (live !== null) live.abort();
    live = null;
    key = null;
    streamUp = false;
    sessionStorage.removeItem(STORE);
    for (const t of timers) clearInterval(t);
    timers = [];
    hideQr();
    MEDIA.reset();
    CONVO.reset();
    for (const id of ['accounts', 'account-details', 'health', 'health-reasons', 'out', 'in', 'dead', 'events']) $(id).replaceChildren();
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    showStream('offline');
    say(message);
  }

  function expire (err) { close('The key is no longer accepted: ' + err.message); }

  $('login').addEventListener('submit', (ev) => { ev.preventDefault(); open($('key').value.trim()); });
  $('logout').addEventListener('click', () => close('The key is forgotten.'));
  $('connect').addEventListener('click', connect);
  $('send-form').addEventListener('submit', send);
  $('dead-refresh').addEventListener('click', refreshDead);
  const stored = sessionStorage.getItem(STORE);
  if (stored) open(stored);
})();
