// The status page's dead letters (inlined before status.js): webhook deliveries that failed for good, each
// with a Redrive button (POST /webhooks/deliveries/{id}/retry). They have no events: status.js polls them.
const DEAD = (function () {
  const LIMIT = 20;

  async function refresh () {
    const body = await API.guard('dead-error', () => API.call('GET', '/webhooks/deliveries?status=failed&limit=' + LIMIT));
    if (!body || !PAGE.isOpen()) return;
    KIT.rowsOf('dead', body.deliveries.map((d) => {
      const button = el('button', { type: 'button', class: 'redrive', text: 'Redrive' });
      button.addEventListener('click', () => redrive(d.id, button));
      return el('tr', { 'data-id': d.id },
        el('td', { text: KIT.when(d.failed_at) }),
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
      const d = await API.call('POST', '/webhooks/deliveries/' + encodeURIComponent(id) + '/retry');
      result.className = 'ok-text';
      result.textContent = 'Redriven: delivery ' + d.id + ' is ' + d.status + ' again.';
    } catch (e) {
      result.className = 'error';
      result.textContent = 'Redrive failed: ' + e.message;
    }
    refresh();
  }

  return { refresh };
})();
