// The status page's small display helpers (inlined before status.js): the tone of a state's badge, a table
// body's rows, a time as the reader's locale shows it. Text only (dom.js's el()), never HTML.
const KIT = (function () {
  const TONE = {
    connected: 'ok', delivered: 'ok', read: 'ok', RUNNING: 'ok', ok: 'ok', writable: 'ok', live: 'ok',
    sent: 'info', sending: 'info', connecting: 'info', STARTING: 'info', pending: 'info', received: 'info',
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

  return { TONE, rowsOf, badge, when, sleep };
})();
