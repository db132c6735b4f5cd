// A message's conversation on the status page (issue 25), inlined before status.js: the message a reply quotes,
// the reactions on it (ours and the contact's), "edited" with the latest text, "deleted" once revoked; a line for
// a location, contact cards or a poll; and our actions (a reaction, an edit, a revoke, a read, a presence) as rows
// naming the message they act on. Both directions: a contact's message carries quoted / edits / revoked_at, ours
// reply_to / target_id / content / reactions / edits / revoked. A contact's reactions exist only as
// message.reaction events: read from the account's event log after a cursor (once whole, then what is new), in
// the log's order so the latest reaction of each sender wins. Our own actions are remembered from the rows seen
// (a page shows the newest 20 only). Nothing here is parsed as HTML: textContent and attributes only.
const CONVO = (function () {
  const EVENT_PAGE = 500; // GET /events' largest page
  const MAX_PAGES = 20; // a first read of a long log stops there (the page shows recent messages only)
  const MAX_KNOWN = 1000; // messages remembered for quotes
  const ACTIONS = ['reaction', 'edit', 'revoke', 'read', 'presence'];
  const EVENTS = ['message.reaction', 'message.edited', 'message.revoked'];
  let known = new Map(); // our id -> the message as last listed or fetched (either direction)
  let asked = new Map(); // our id -> Promise of the message (a quoted message not listed)
  let theirs = new Map(); // our id -> Map(sender -> emoji): the contacts' reactions
  let mine = new Map(); // target id -> {reaction, edit, revoke}: our latest action rows of each kind ({at, m})
  let after = 0; // the event log's cursor for message.reaction
  let syncing = null;
  let generation = 0; // bumped by reset(): an answer for the account shown before is dropped

  function reset () {
    generation++;
    known = new Map(); asked = new Map(); theirs = new Map(); mine = new Map();
    after = 0; syncing = null;
  }

  function remember (m) {
    known.delete(m.id);
    known.set(m.id, m);
    while (known.size > MAX_KNOWN) known.delete(known.keys().next().value);
  }

  // The listed rows: every message for quotes; our actions by their target (the newest of each kind wins,
  // a failed one changed nothing). True when an action is new: the other list may show its target.
  function learn (messages) {
    let changed = false;
    for (const m of messages) {
      remember(m);
      if (m.direction !== 'out' || !ACTIONS.includes(m.type) || !m.target_id || m.status === 'failed') continue;
      const acts = mine.get(m.target_id) || {};
      const was = acts[m.type];
      if (!was || (was.at <= m.created_at && was.m.id !== m.id)) { acts[m.type] = { at: m.created_at, m }; changed = true; }
      mine.set(m.target_id, acts);
    }
    return changed;
  }

  // The contacts' reactions: the event log after the cursor, page by page. `load(after, limit)` resolves to
  // GET /events' body. One read at a time; a call while one runs waits for it. True when a reaction came.
  function sync (load) {
    if (syncing) return syncing;
    const gen = generation;
    syncing = (async () => {
      let changed = false;
      for (let page = 0; page < MAX_PAGES; page++) {
        const body = await load(after, EVENT_PAGE);
        if (gen !== generation) return false;
        for (const e of body.events) {
          const d = e.data || {};
          if (e.type !== 'message.reaction' || !d.message_id) continue;
          const by = theirs.get(d.message_id) || new Map();
          const sender = d.phone_number || d.lid || '?';
          by.delete(sender);
          if (d.emoji) by.set(sender, d.emoji);
          theirs.set(d.message_id, by);
          changed = true;
        }
        after = body.next_after;
        if (body.events.length < EVENT_PAGE) break;
      }
      return changed;
    })().finally(() => { if (gen === generation) syncing = null; });
    return syncing;
  }

  // --- what a message says -------------------------------------------------------------------------------
  const coordinates = (l) => l ? [l.name, l.address].filter(Boolean).join(', ') + ' (' + l.latitude + ', ' + l.longitude + ')' : '';

  function content (m) { // a location, contact cards or a poll, from either direction's fields
    const c = m.content || {};
    const location = m.location || c.location;
    if (location) return '📍 ' + coordinates(location);
    const cards = m.contacts || c.contacts;
    if (cards || c.vcards) {
      const names = (cards || []).map((x) => x.name).filter(Boolean);
      const count = Math.max((cards || []).length, (c.vcards || []).length);
      return '👤 ' + (names.length ? names.join(', ') : count + ' contact card' + (count === 1 ? '' : 's'));
    }
    const poll = m.poll || c.poll;
    if (poll) return '📊 ' + poll.question + ': ' + (poll.options || []).join(' / ') + (poll.multiple ? ' (several choices)' : '');
    if (m.type === 'unsupported') return '(a ' + (m.raw_type || 'message') + ' this gateway does not read)';
    return null;
  }

  // The text a message shows: the latest of an edited one, else its text or caption, else what it is.
  function latest (m) {
    if (m.direction === 'in') return m.text != null ? m.text : content(m);
    if (m.edits && m.edits.length) return m.edits[m.edits.length - 1];
    const edit = (mine.get(m.id) || {}).edit;
    if (edit && edit.m.content && typeof edit.m.content.message === 'string') return edit.m.content.message;
    const kind = content(m);
    if (kind != null) return kind;
    if (m.message != null) return m.message;
    return m.media && m.media.caption ? m.media.caption : null;
  }

  const summary = (m) => latest(m) || (m.media ? m.media.kind : m.type || 'message');

  function action (m) { // our action's own line
    const c = m.content || {};
    if (m.type === 'reaction') return c.emoji ? 'reacted ' + c.emoji : 'removed the reaction';
    if (m.type === 'edit') return 'edited to: ' + (c.message == null ? '' : c.message);
    if (m.type === 'revoke') return 'deleted for everyone';
    if (m.type === 'read') return 'marked read' + (c.ids ? ' (' + c.ids.length + ' message' + (c.ids.length === 1 ? ')' : 's)') : '');
    return 'presence: ' + (c.state || '?');
  }

  // "↪ the quoted text", filled in when the quoted message was not listed (`get(id)` fetches it).
  function reference (cls, label, id, get) {
    const text = el('span', { class: 'quote-text', text: '…' });
    const box = el('div', { class: cls, 'data-ref': id || '' }, el('span', { class: 'muted', text: label }), text);
    if (!id) { text.textContent = 'a message not stored here'; return box; }
    const show = (m) => { text.textContent = summary(m); if (m.revoked || m.revoked_at) box.classList.add('revoked'); };
    if (known.has(id)) { show(known.get(id)); return box; }
    if (!asked.has(id)) {
      const gen = generation;
      asked.set(id, get(id).then((m) => { if (gen === generation) remember(m); return m; }));
    }
    asked.get(id).then(show, () => { asked.delete(id); text.textContent = 'a message not found'; });
    return box;
  }

  function reactions (m) {
    const shown = new Map();
    const ours = (mine.get(m.id) || {}).reaction;
    if (m.reactions && typeof m.reactions === 'object') {
      for (const [by, emoji] of Object.entries(m.reactions)) if (emoji) shown.set(by, emoji);
    } else if (ours && ours.m.content && ours.m.content.emoji) {
      shown.set('me', ours.m.content.emoji);
    }
    for (const [by, emoji] of theirs.get(m.id) || []) shown.set(by, emoji);
    if (!shown.size) return null;
    return el('div', { class: 'reactions' }, ...[...shown].map(([by, emoji]) =>
      el('span', { class: 'reaction', 'data-by': by, title: by === 'me' ? 'our reaction' : 'from ' + by, text: emoji })));
  }

  // The Message cell of `m`; `media` is its media element (status-media.js) or null; `get(id)` fetches a message.
  function cell (m, media, get) {
    const td = el('td', { class: 'text convo' });
    const quoted = m.direction === 'in' ? (m.quoted ? m.quoted.id : m.quoted_id ? null : undefined) : m.reply_to;
    if (quoted !== undefined) td.append(reference('quote', '↪ ', quoted, get));
    if (m.direction === 'out' && ACTIONS.includes(m.type)) {
      td.append(el('span', { class: 'action', text: action(m) }));
      if (m.target_id) td.append(reference('target', ' on ', m.target_id, get));
      return td;
    }
    const revoked = Boolean(m.revoked || m.revoked_at || (mine.get(m.id) || {}).revoke);
    const edits = m.direction === 'in' ? (m.edits || []).map((e) => e.text) : m.edits || [];
    const edited = edits.length > 1 || Boolean((mine.get(m.id) || {}).edit);
    const text = m.media ? content(m) : latest(m);
    if (media) td.append(media);
    if (text != null) td.append(el('span', { class: 'body', text }));
    if (edited) {
      td.append(' ', el('span', { class: 'badge info edited', text: 'edited', title: edits.length > 1 ? 'before: ' + edits.slice(0, -1).join(' → ') : 'edited' }));
    }
    if (revoked) { td.classList.add('revoked'); td.append(' ', el('span', { class: 'badge bad deleted', text: 'deleted' })); }
    const r = reactions(m);
    if (r) td.append(r);
    return td;
  }

  return { cell, learn, sync, reset, content, EVENTS }; // content: also the chats view's (status-chats.js)
})();
