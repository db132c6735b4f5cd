// The status page's live event stream (inlined before status.js): GET /accounts/{a}/events/stream read with
// fetch() (an EventSource cannot send the key's header) and parsed by status-sse.js, resumed after the last
// event's id with Last-Event-ID, retried with a capped doubling delay; its state badge; and the Live events
// card, one line per event: its type and what changed, never a message's text, never a QR code.
const STREAM = (function () {
  const MAX_EVENTS = 50;
  let lastEventId = null; // the seq of the last event read: a reconnect resumes after it

  function show (text) {
    const node = $('stream-state');
    node.textContent = text;
    node.className = 'badge ' + (KIT.TONE[text] || 'info');
  }

  // Reads `account`'s stream until `signal` aborts: `opened()` each time it (re)opens (what happened before
  // it is reloaded), `handle(type, event)` for each event.
  async function follow (account, signal, opened, handle) {
    let delay = 1000;
    while (!signal.aborted) {
      show('connecting');
      try {
        const headers = { 'X-API-Key': PAGE.key, Accept: 'text/event-stream' };
        if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
        const res = await fetch(API.accountPath(account, '/events/stream'), { headers, cache: 'no-store', signal });
        if (!res.ok) {
          const err = await API.failure(res);
          if (signal.aborted) return; // a 401 closed the page
          if (res.status < 500) { show('stopped'); $('account-error').textContent = 'Live events: ' + err.message; return; }
          throw err;
        }
        PAGE.streamUp = true;
        show('live');
        delay = 1000;
        opened();
        const feed = sseParser((msg) => {
          if (signal.aborted) return;
          if (msg.id) lastEventId = msg.id;
          let event;
          try { event = JSON.parse(msg.data); } catch (e) { return; }
          log(msg.type, msg.id, event, event.data || {});
          handle(msg.type, event);
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
      PAGE.streamUp = false;
      show('reconnecting');
      await KIT.sleep(delay, signal);
      delay = Math.min(delay * 2, 8000);
    }
  }

  function log (type, seq, event, data) {
    let what = '';
    if (type === 'session.status') what = (data.state || '?') + (data.phone_number ? ' ' + data.phone_number : '');
    else if (type === 'message.status') what = (data.status || '?') + ' to ' + (data.phone_number || data.group_id || '?');
    else if (type === 'message.received') what = (data.kind || 'message') + ' from ' + (data.phone_number || data.lid || '?') + (data.group_id ? ' in ' + data.group_id : '');
    else if (CONVO.EVENTS.includes(type) || type === 'presence') what = (data.state ? data.state + ' ' : '') + 'from ' + (data.phone_number || data.lid || '?');
    const item = el('li', { 'data-type': type, 'data-seq': seq || '' },
      el('span', { class: 'muted', text: KIT.when(event.timestamp) + ' ' }),
      el('strong', { text: type }), ' ', el('span', { class: 'what', text: what }));
    const list = $('events');
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  function reset () { // another account's stream starts from now
    lastEventId = null;
    $('events').replaceChildren();
  }

  return { follow, show, reset };
})();
