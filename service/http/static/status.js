// The status page. It reads this gateway's API with the key the user gives once (kept in this tab's
// sessionStorage). Every call sends X-API-Key (status-api.js); the live event stream is read with fetch()
// (status-stream.js), because an EventSource cannot send a header and the key must never go into a URL. Text
// from the API is set with textContent and attributes only (never innerHTML): nothing a contact writes is
// parsed as HTML. This script opens and closes the page, selects an account and routes each event to the
// cards it changes; each card is its own status-*.js part. The parts are inlined in the order of their names
// (views/static_page.py), so a part uses another's names only when called, never while it is defined.
(function () {
  const STORE = 'wa-gateway-key'; // the same as /docs: one key per tab
  const QR_REFRESH_MS = 5000; // while a QR shows: the worker emits no event when it rotates (the state stays qr)
  const POLL_MS = 15000; // health and dead letters have no events; the rest too while the stream is down
  const { soon } = API;
  let timers = [];

  const refreshAccounts = () => ACCOUNT.refreshAll(select);

  // What an event changes: the cards that show it reload (a burst of events reloads each once).
  function handle (type, event) {
    const data = event.data || {};
    if (type === 'session.status') {
      ACCOUNT.apply(data.state, data.phone_number, data.pairing_code);
      soon('account', ACCOUNT.refresh); soon('accounts', refreshAccounts); soon('health', HEALTH.refresh);
    } else if (type === 'message.received' || type === 'media.stored' || type === 'media.failed') {
      soon('in', MESSAGES.refreshIn); soon('out', MESSAGES.refreshOut); // media.* events are of either direction
    } else if (type === 'message.status') {
      soon('out', MESSAGES.refreshOut);
    } else if (CONVO.EVENTS.includes(type)) { // a contact reacted, edited or deleted (status-conversation.js)
      soon('in', MESSAGES.refreshIn); soon('out', MESSAGES.refreshOut);
    }
    if (CHATS.affects(type)) { soon('chats', CHATS.refresh, 300); soon('thread', THREAD.refresh, 300); } // status-chats.js
    soon('dead', DEAD.refresh, 2000); // an event goes to the webhooks: a refused one is a dead letter soon after
  }

  function opened () { // what happened before the stream (re)opened
    ACCOUNT.refresh(); refreshAccounts(); MESSAGES.refreshOut(); MESSAGES.refreshIn(); CHATS.refresh(); THREAD.refresh();
  }

  function select (account) {
    if (PAGE.live !== null) PAGE.live.abort();
    PAGE.live = new AbortController();
    PAGE.selected = account;
    ACCOUNT.reset();
    CONVO.reset();
    STREAM.reset();
    CHATS.reset();
    THREAD.reset();
    $('account-name').textContent = account;
    $('out').replaceChildren(); $('in').replaceChildren();
    for (const row of document.querySelectorAll('tr[data-account]')) {
      row.classList.toggle('selected', row.dataset.account === account);
    }
    ACCOUNT.refresh(); MESSAGES.refreshOut(); MESSAGES.refreshIn(); CHATS.refresh();
    STREAM.follow(account, PAGE.live.signal, opened, handle);
  }

  function say (text) { $('login-state').textContent = text; }

  async function open (candidate) {
    if (!candidate) { say('Enter the API key.'); return; }
    PAGE.key = candidate;
    say('Checking the key…');
    let body;
    try {
      body = await API.call('GET', '/accounts');
    } catch (e) {
      PAGE.key = null;
      sessionStorage.removeItem(STORE);
      if (e.status === 401) say('The key was refused: ' + e.message);
      else if (e.status === 403) say('This key is scoped to one account; the status page needs an admin key. ' + e.message);
      else say('Could not check the key: ' + e.message);
      return;
    }
    sessionStorage.setItem(STORE, PAGE.key);
    $('key').value = '';
    say('');
    $('login').hidden = true;
    $('logout').hidden = false;
    $('app').hidden = false;
    PAGE.live = new AbortController(); // select() replaces it; the page counts as open from here on
    ACCOUNT.render(body.accounts, select);
    const names = body.accounts.map((a) => a.name);
    select(names.includes('default') ? 'default' : names[0]);
    HEALTH.refresh(); DEAD.refresh();
    timers.push(setInterval(() => { if (ACCOUNT.qrShown()) ACCOUNT.updateQr(); }, QR_REFRESH_MS));
    timers.push(setInterval(() => {
      // the chats too: a history sync's messages come as no message event (status-chats.js)
      HEALTH.refresh(); DEAD.refresh(); refreshAccounts(); CHATS.refresh();
      if (!PAGE.streamUp) { ACCOUNT.refresh(); MESSAGES.refreshOut(); MESSAGES.refreshIn(); THREAD.refresh(); }
    }, POLL_MS));
  }

  function close (message) {
    if (PAGE.live !== null) PAGE.live.abort();
    PAGE.live = null;
    PAGE.key = null;
    PAGE.streamUp = false;
    sessionStorage.removeItem(STORE);
    for (const t of timers) clearInterval(t);
    timers = [];
    ACCOUNT.reset();
    MEDIA.reset();
    CONVO.reset();
    CHATS.reset();
    THREAD.reset();
    for (const id of ['accounts', 'account-details', 'health', 'health-reasons', 'out', 'in', 'dead', 'events']) $(id).replaceChildren();
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    STREAM.show('offline');
    say(message);
  }

  PAGE.expire = (err) => close('The key is no longer accepted: ' + err.message);

  $('login').addEventListener('submit', (ev) => { ev.preventDefault(); open($('key').value.trim()); });
  $('logout').addEventListener('click', () => close('The key is forgotten.'));
  $('connect').addEventListener('click', ACCOUNT.connect);
  $('send-form').addEventListener('submit', MESSAGES.send);
  $('dead-refresh').addEventListener('click', DEAD.refresh);
  const stored = sessionStorage.getItem(STORE);
  if (stored) open(stored);
})();
