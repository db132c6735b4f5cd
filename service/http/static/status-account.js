// The status page's accounts table and the selected account's card (inlined before status.js): its state from
// the API or the stream, the Connect button, the live QR image (fetched with the key, shown from a blob: URL)
// and the pairing code (status-pairing.js). The QR goes into no log line and no text of the page.
const ACCOUNT = (function () {
  const S = STATE_NAMES.worker; // service/states.py, put before this script by views/static_page.py
  const CONNECTABLE = [S.STOPPED, S.LOGGED_OUT, S.FAILED];
  let state = null; // the selected account's WhatsApp state
  let shards = {}; // account name -> its row in GET /accounts
  let qrText = null;
  let qrUrl = null;

  function render (accounts, select) {
    shards = {};
    $('accounts').replaceChildren(...accounts.map((a) => {
      shards[a.name] = a;
      const tr = el('tr', { 'data-account': a.name, class: a.name === PAGE.selected ? 'selected' : '' },
        el('td', {}, el('button', { type: 'button', class: 'link', text: a.name })),
        el('td', { class: 'state' }, KIT.badge(a.state || 'unknown')),
        el('td', { class: 'num phone', text: a.phone_number || '—' }));
      tr.addEventListener('click', () => select(a.name));
      return tr;
    }));
  }

  async function refreshAll (select) {
    const body = await API.guard('accounts-error', () => API.call('GET', '/accounts'));
    if (body && PAGE.isOpen()) render(body.accounts, select);
  }

  // The selected account's state as the stream or an answer tells it: badges, the Connect button, the QR.
  function apply (newState, phone, code) {
    if (!newState) return;
    const was = state;
    state = newState;
    $('account-state').replaceChildren(KIT.badge(state));
    const row = document.querySelector('tr[data-account="' + CSS.escape(PAGE.selected) + '"]');
    if (row) {
      row.querySelector('.state').replaceChildren(KIT.badge(state));
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

  async function refresh () {
    const account = PAGE.selected;
    const s = await API.guard('account-error', () => API.call('GET', API.accountPath(account, '/status')));
    if (!s || account !== PAGE.selected || !PAGE.isOpen()) return;
    delete s.qr; delete s.qr_image; // the QR is shown as an image only
    const list = $('account-details');
    list.replaceChildren();
    detail(list, 'Phone number', s.phone_number || '—', 'd-phone');
    detail(list, 'Name', s.name || '—');
    if (shards[account]) detail(list, 'Worker shard', String(shards[account].shard));
    if (s.link) detail(list, 'Link', s.link.alive ? 'alive (last frame ' + s.link.last_frame_age_ms + ' ms ago)' : 'dead: ' + (s.link.reason || ''));
    if (s.reconnect && s.reconnect.scheduled) detail(list, 'Reconnect', 'attempt ' + s.reconnect.attempt + ', next in ' + Math.round((s.reconnect.next_retry_ms || 0) / 1000) + ' s');
    // WhatsApp cannot be reached: why, and what to check (the worker keeps retrying).
    if (s.unreachable) detail(list, 'Unreachable', s.unreachable.cause + ' (' + s.unreachable.attempts + ' attempts since ' + KIT.when(s.unreachable.since) + '): ' + s.unreachable.detail + '. ' + s.unreachable.hint, 'd-unreachable');
    detail(list, 'Last error', s.last_error || '—');
    apply(s.state, s.phone_number, s.pairing_code);
  }

  function hideQr () {
    $('qr-box').hidden = true;
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    $('qr').removeAttribute('src');
    qrText = null; qrUrl = null;
  }

  async function updateQr () {
    const account = PAGE.selected;
    if (state !== S.QR) { hideQr(); return; }
    $('qr-box').hidden = false;
    try {
      const svg = await (await API.call('GET', API.accountPath(account, '/qr?format=svg'), undefined, true)).text();
      if (account !== PAGE.selected || state !== S.QR || svg === qrText) return;
      qrText = svg;
      const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
      $('qr').src = url;
      if (qrUrl) URL.revokeObjectURL(qrUrl);
      qrUrl = url;
      $('qr-updated').textContent = 'Shown since ' + new Date().toLocaleTimeString() + '.';
    } catch (e) {
      if (e.status === 409) API.soon('account', refresh); // the state moved on
      else if (PAGE.isOpen()) $('account-error').textContent = 'QR code: ' + e.message;
    }
  }

  async function connect () {
    const button = $('connect');
    button.disabled = true;
    $('account-error').textContent = '';
    try {
      const s = await API.call('POST', API.accountPath(PAGE.selected, '/connect'), PAIRING.connectBody());
      apply(s.state, s.phone_number, s.pairing_code);
    } catch (e) {
      $('account-error').textContent = 'Connect: ' + e.message;
    } finally {
      button.disabled = false;
    }
  }

  function reset () { // another account is shown, or the page closed
    state = null;
    hideQr();
    $('account-state').replaceChildren();
    $('account-details').replaceChildren();
    $('account-error').textContent = '';
    $('connect').hidden = true;
  }

  const qrShown = () => state === S.QR;

  return { render, refreshAll, refresh, apply, updateQr, qrShown, connect, reset };
})();
