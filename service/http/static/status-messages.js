// The status page's sent and received lists and its test-message form (inlined before status.js): the newest
// messages of each direction with their status, their media (status-media.js) and their conversation
// (status-conversation.js: quote, reactions, edited, deleted). Text only, never HTML.
const MESSAGES = (function () {
  const LIMIT = 20;

  // A message's text with its conversation, or its media fetched through the API with the key, by the
  // message's own id (never a URL taken from the answer).
  function messageCell (m, account) {
    const fetcher = () => API.call('GET', API.accountPath(account, '/media/' + encodeURIComponent(m.id)), undefined, true);
    return CONVO.cell(m, m.media ? MEDIA.cell(m.id, m.media, fetcher) : null,
      (id) => API.call('GET', API.accountPath(account, '/messages/' + encodeURIComponent(id))));
  }

  // One direction's newest messages, with what the conversation knows (the contacts' reactions: the event log).
  async function listed (account, direction) {
    const [body, reacted] = await Promise.all([
      API.call('GET', API.accountPath(account, '/messages?direction=' + direction + '&limit=' + LIMIT)),
      CONVO.sync((after, limit) => API.call('GET', API.accountPath(account, '/events?types=message.reaction&limit=' + limit + '&after=' + after)))]);
    if (account === PAGE.selected && PAGE.isOpen() && (CONVO.learn(body.messages) || reacted)) {
      if (direction === 'out') API.soon('in', refreshIn); else API.soon('out', refreshOut); // it may show there too
    }
    return body;
  }

  async function refreshOut () {
    const account = PAGE.selected;
    const body = await API.guard('out-error', () => listed(account, 'out'));
    if (!body || account !== PAGE.selected || !PAGE.isOpen()) return;
    KIT.rowsOf('out', body.messages.map((m) => el('tr', { 'data-id': m.id, 'data-type': m.type || 'text' },
      el('td', { text: KIT.when(m.created_at) }),
      el('td', { class: 'num', text: m.phone_number || m.group_id || '—' }),
      el('td', {}, KIT.badge(m.status), m.reason || m.wait_reason ? el('span', { class: 'muted', text: ' ' + (m.reason || m.wait_reason) }) : null),
      messageCell(m, account))), 'Nothing sent yet.');
  }

  async function refreshIn () {
    const account = PAGE.selected;
    const body = await API.guard('in-error', () => listed(account, 'in'));
    if (!body || account !== PAGE.selected || !PAGE.isOpen()) return;
    KIT.rowsOf('in', body.messages.map((m) => el('tr', { 'data-id': m.id, 'data-type': m.type || m.kind },
      el('td', { text: KIT.when(m.received_at || m.timestamp) }),
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
      const m = await API.call('POST', API.accountPath(PAGE.selected, '/send'), { phone_number: $('send-to').value.trim(), message: $('send-text').value });
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

  return { refreshOut, refreshIn, send };
})();
