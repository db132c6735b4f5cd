// A chat's thread on the status page (issue 27, inlined before status.js): GET /chats/{chat}/messages, both
// directions oldest at the top, newest page first and older pages on demand ("Older messages", by the answer's
// cursor); each message with who wrote it (a group's member), when, its status (ours: the outbox's; theirs:
// received or read), its media (status-media.js: a preview or a download, fetched with the key), the message it
// replies to, its reactions, edited and deleted marks, and "history" when it came from the phone's history sync.
// The thread reloads its newest page on every event about messages (status.js). "Mark read" reads the chat
// (POST /chats/{chat}/read); the form sends into it (POST /send). Everything a message carries is set as text
// or an attribute, never parsed as HTML.
const THREAD = (function () {
  const LIMIT = 50;
  let chat = null; // the open chat's id
  let info = null; // the open chat as the API last described it
  // our id -> ChatMessage, the loaded pages oldest first, in the API's order (its pages are newest first; a
  // contact's messages are timed in whole seconds, so the time alone does not order them)
  let messages = new Map();
  let cursor = null; // the cursor of the page older than what is loaded
  let quoted = new Map(); // our id -> Promise of a replied-to message not loaded here (GET /messages/{id})
  let generation = 0; // bumped when another chat opens or the account changes

  const path = (suffix) => API.accountPath(PAGE.selected, '/chats/' + encodeURIComponent(chat) + suffix);
  const who = (from) => from ? (from.push_name || from.phone_number || from.lid || '?') : '?';
  const ordered = () => [...messages.values()];
  const oldestFirst = (page) => page.slice().reverse().map((m) => [m.id, m]);

  // The replied-to message's text: from the loaded pages, else fetched by our id (a message of another page).
  function quote (ref) {
    const text = el('span', { class: 'quote-text', text: '…' });
    const box = el('div', { class: 'quote', 'data-ref': ref.id || ref.wa_id || '' }, el('span', { class: 'muted', text: '↪ ' }), text);
    const show = (m) => {
      text.textContent = CHATS.line(Object.assign({}, m, { direction: 'in' })) || '';
      if (m.revoked || m.revoked_at) box.classList.add('revoked');
    };
    const here = [...messages.values()].find((m) => (ref.id && m.id === ref.id) || (ref.wa_id && m.wa_id === ref.wa_id));
    if (here) { show(here); return box; }
    if (!ref.id) { text.textContent = 'a message not stored here'; return box; }
    if (!quoted.has(ref.id)) quoted.set(ref.id, API.call('GET', API.accountPath(PAGE.selected, '/messages/' + encodeURIComponent(ref.id))));
    quoted.get(ref.id).then((m) => show({ text: m.text != null ? m.text : m.message, media: m.media, kind: m.kind || m.type, content: m.content, revoked: m.revoked }),
      () => { quoted.delete(ref.id); text.textContent = 'a message not found'; });
    return box;
  }

  // The standing reactions, [{from: "me" | the contact's number or LID, emoji}].
  function reactions (m) {
    const shown = (Array.isArray(m.reactions) ? m.reactions : []).filter((r) => r && r.emoji);
    if (!shown.length) return null;
    return el('div', { class: 'reactions' }, ...shown.map((r) => {
      const by = String(r.from || '?');
      return el('span', { class: 'reaction', 'data-by': by, title: by === 'me' ? 'our reaction' : 'from ' + by, text: String(r.emoji) });
    }));
  }

  function bubble (m) {
    const li = el('li', { 'data-id': m.id, 'data-direction': m.direction, 'data-kind': String(m.kind),
      class: 'msg ' + (m.direction === 'out' ? 'out' : 'in') + (m.history ? ' history' : '') + (m.revoked ? ' revoked' : '') });
    const meta = el('div', { class: 'msg-meta' });
    if (m.direction === 'in' && info && info.kind === 'group') meta.append(el('span', { class: 'msg-from', text: who(m.from) }), ' ');
    meta.append(el('span', { class: 'muted msg-when', text: KIT.when(m.sent_at) }));
    if (m.status) meta.append(' ', el('span', { class: 'badge status ' + (KIT.TONE[m.status] || ''), text: String(m.status) }));
    if (m.history) meta.append(' ', el('span', { class: 'badge history', title: "from the phone's history", text: 'history' }));
    li.append(meta);
    if (m.reply_to) li.append(quote(m.reply_to));
    if (m.media) {
      const fetcher = () => API.call('GET', API.accountPath(PAGE.selected, '/media/' + encodeURIComponent(m.id)), undefined, true);
      li.append(MEDIA.cell(m.id, m.media, fetcher));
    }
    const text = m.text != null && m.text !== '' ? m.text : CONVO.content(m);
    if (text != null && !(m.media && m.media.caption === text)) li.append(el('div', { class: 'body', text: String(text) }));
    else if (text == null && !m.media && !m.revoked) li.append(el('div', { class: 'body muted', text: '(' + (m.kind || 'message') + ')' }));
    if (m.edited) li.append(KIT.badge('edited', 'info edited'));
    if (m.revoked) li.append(' ', KIT.badge('deleted', 'bad deleted'));
    const r = reactions(m);
    if (r) li.append(r);
    return li;
  }

  function render (keepBottom) {
    const list = $('thread-messages');
    const fromBottom = list.scrollHeight - list.scrollTop;
    const atBottom = fromBottom - list.clientHeight < 40;
    list.replaceChildren(...ordered().map(bubble));
    if (keepBottom === 'older') list.scrollTop = list.scrollHeight - fromBottom; // the same messages in view
    else if (keepBottom || atBottom) list.scrollTop = list.scrollHeight;
    $('thread-older').hidden = !cursor;
    $('thread-title').textContent = info ? (info.name || info.phone_number || info.id) : chat;
    $('thread-id').textContent = info && (info.name || info.id !== chat) ? info.id : '';
    $('thread-read').hidden = !(info && info.unread_count > 0 && info.kind !== 'group');
    $('thread-form').hidden = !(info && (info.kind === 'group' || info.phone_number));
  }

  async function load (query) {
    const gen = generation;
    const body = await API.guard('thread-error', () => API.call('GET', path('/messages?limit=' + LIMIT + query)));
    if (!body || gen !== generation || !PAGE.isOpen()) return null;
    info = body.chat;
    if (body.chat && body.chat.id !== chat) chat = body.chat.id; // a LID's chat answered as its phone's
    return body;
  }

  async function open (id) {
    generation++;
    chat = id; info = null; messages = new Map(); cursor = null; quoted = new Map();
    $('thread').hidden = false;
    $('thread-result').textContent = '';
    $('thread-messages').replaceChildren();
    CHATS.render(); // the row shows as selected
    const body = await load('');
    if (!body) return;
    messages = new Map(oldestFirst(body.messages));
    cursor = body.next_cursor;
    render(true);
  }

  // The newest page again: merged into what is loaded, or instead of it when none of it was loaded (more
  // than a page came since: what is loaded no longer joins it).
  async function refresh () {
    if (chat === null) return;
    const body = await load('');
    if (!body) return;
    const newest = new Map(oldestFirst(body.messages));
    if (!body.messages.some((m) => messages.has(m.id))) { // nothing loaded, or more than a page came since
      messages = newest;
      cursor = body.next_cursor;
    } else { // what is loaded and not in the newest page is older than all of it
      messages = new Map([...[...messages].filter(([id]) => !newest.has(id)), ...newest]);
    }
    render(false);
  }

  async function older () {
    if (chat === null || !cursor) return;
    const button = $('thread-older');
    button.disabled = true;
    const body = await load('&cursor=' + encodeURIComponent(cursor));
    button.disabled = false;
    if (!body) return;
    messages = new Map([...oldestFirst(body.messages).filter(([id]) => !messages.has(id)), ...messages]);
    cursor = body.next_cursor;
    render('older');
  }

  async function read () {
    const id = chat;
    $('thread-read').disabled = true;
    try {
      await API.call('POST', path('/read'));
      if (id !== chat) return;
      info = Object.assign({}, info, { unread_count: 0 });
      CHATS.mark(id, { unread_count: 0 });
      render(false);
      refresh(); // its messages now read
    } catch (e) {
      $('thread-error').textContent = 'Mark read: ' + e.message;
    } finally {
      $('thread-read').disabled = false;
    }
  }

  async function send (ev) {
    ev.preventDefault();
    const result = $('thread-result');
    const to = info.kind === 'group' ? { group_id: info.id } : { phone_number: info.phone_number };
    $('thread-send').disabled = true;
    try {
      const m = await API.call('POST', API.accountPath(PAGE.selected, '/send'), Object.assign(to, { message: $('thread-text').value }));
      result.className = 'ok-text';
      result.textContent = 'Accepted: ' + m.status + '.';
      $('thread-text').value = '';
    } catch (e) {
      result.className = 'error';
      result.textContent = 'Not sent: ' + e.message;
    } finally {
      $('thread-send').disabled = false;
    }
    refresh();
  }

  // The chats list was read: the open chat's unread count and name as it says.
  function listed (chats) {
    const mine = chats.find((c) => c.id === chat);
    if (mine && info) { info = Object.assign({}, info, mine); render(false); }
  }

  function reset () {
    generation++;
    chat = null; info = null; messages = new Map(); cursor = null; quoted = new Map();
    $('thread').hidden = true;
    $('thread-messages').replaceChildren();
    $('thread-error').textContent = '';
  }

  $('thread-older').addEventListener('click', older);
  $('thread-read').addEventListener('click', read);
  $('thread-form').addEventListener('submit', send);
  return { open, refresh, listed, reset, shown: () => chat };
})();
