// The status page's health card (inlined before status.js): GET /health as one row per program (gateway,
// worker, shards, WhatsApp, accounts, store, webhooks). Health has no events: status.js polls it.
const HEALTH = (function () {
  const mb = (bytes) => bytes == null ? '' : Math.round(bytes / 1048576) + ' MB';
  const parts = (...xs) => xs.filter((x) => x !== '' && x != null).join(', ');

  async function refresh () {
    const h = await API.guard('health-error', () => API.call('GET', '/health'));
    if (!h || !PAGE.isOpen()) return;
    $('health-status').replaceChildren(KIT.badge(h.status));
    $('health-reasons').replaceChildren(...h.reasons.map((r) => el('li', { text: r })));
    const rows = [];
    const row = (name, st, details, tone) => rows.push(el('tr', { 'data-program': name },
      el('td', { text: name }), el('td', {}, KIT.badge(st, tone)), el('td', { class: 'text', text: details })));
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

  return { refresh };
})();
