// The status page's chats list (issue 27, inlined before status.js): the selected account's chats, newest
// activity first (GET /chats, paged by its cursor: "More chats" reads the next page), each with its name, its
// last message in one line, when, and its unread count; a click opens its thread (status-thread.js). The list
// reloads on every event about messages or chats (status.js routes them here). Text only, never HTML.
const CHATS = (function () {
  const LIMIT = 50;
  const PREFIXES = ['message.', 'media.', 'chat.', 'poll.', 'group.', 'contact.', 'history.'];
  let cursor = null; // the next page's cursor after what the list shows
  let shown = []; // the chats as listed, in order
  let generation = 0; // bumped by reset(): an answer for the account shown before is dropped

  const affects = (type) => PREFIXES.some((p) => type.startsWith(p));
  const chatsPath = (query) => API.accountPath(PAGE.selected, '/chats?limit=' + LIMIT + query);

  // A message in one line: its text, else what it is (a photo, a location...).
  function line (m) {
    if (!m) return '';
    if (m.revoked) return 'deleted';
    const text = m.text != null && m.text !== '' ? m.text : (CONVO.content(m) || (m.media && m.media.caption) || m.kind || 'message');
    return (m.direction === 'out' ? 'You: ' : '') + text;
  }

  function item (c) {
    const unread = c.unread_count > 0;
    const button = el('button', { type: 'button', class: 'chat-open' },
      el('span', { class: 'chat-name', text: c.name || c.phone_number || c.id }),
      el('span', { class: 'chat-when muted', text: KIT.when(c.last_activity_at) }),
      el('span', { class: 'chat-last', text: line(c.last_message) }),
      el('span', { class: 'badge info unread', text: unread ? String(c.unread_count) : '', title: 'unread messages' }));
    button.addEventListener('click', () => THREAD.open(c.id));
    return el('li', { 'data-chat': c.id, 'data-kind': c.kind, class: (unread ? 'has-unread' : '') + (c.id === THREAD.shown() ? ' selected' : '') },
      button, c.name ? el('span', { class: 'chat-id muted num', text: c.id }) : null);
  }

  function render () {
    $('chats').replaceChildren(...(shown.length ? shown.map(item) : [el('li', { class: 'empty muted', text: 'No chats yet.' })]));
    $('chats-more').hidden = !cursor;
  }

  // The first page again (what changed is on top); pages read with "More chats" stay below it.
  async function refresh () {
    const gen = generation;
    const account = PAGE.selected;
    const body = await API.guard('chats-error', () => API.call('GET', chatsPath('')));
    if (!body || gen !== generation || account !== PAGE.selected || !PAGE.isOpen()) return;
    const first = new Set(body.chats.map((c) => c.id));
    const rest = shown.slice(LIMIT).filter((c) => !first.has(c.id));
    shown = body.chats.concat(rest);
    if (!rest.length) cursor = body.next_cursor;
    render();
    THREAD.listed(body.chats);
  }

  async function more () {
    if (!cursor) return;
    const gen = generation;
    const body = await API.guard('chats-error', () => API.call('GET', chatsPath('&cursor=' + encodeURIComponent(cursor))));
    if (!body || gen !== generation || !PAGE.isOpen()) return;
    const have = new Set(shown.map((c) => c.id));
    shown = shown.concat(body.chats.filter((c) => !have.has(c.id)));
    cursor = body.next_cursor;
    render();
  }

  // The open chat changed (opened, or read): its row shows it without waiting for the next refresh.
  function mark (id, changes) {
    shown = shown.map((c) => c.id === id ? Object.assign({}, c, changes) : c);
    render();
  }

  function reset () {
    generation++;
    cursor = null; shown = [];
    $('chats').replaceChildren();
    $('chats-more').hidden = true;
    $('chats-error').textContent = '';
  }

  $('chats-more').addEventListener('click', more);
  return { affects, refresh, render, mark, reset, line };
})();
