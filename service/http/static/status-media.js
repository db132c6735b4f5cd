// The media of a message on the status page (issue 24), inlined before status.js. An image or sticker shows
// as a thumbnail, anything else as a button that downloads it; a file still downloading or failed says so.
// The bytes come through fetch() with the key (an <img src> cannot send the X-API-Key header, and the key
// never goes into a URL), bounded in size, then shown from a blob: object URL. Nothing of a message (caption,
// file name, mimetype, error) is parsed as HTML: textContent and attributes only. A thumbnail's blob carries
// the type only when it is one of the raster images below; a download's is application/octet-stream, so no
// object URL made here can ever render as a document of this origin.
const MEDIA = (function () {
  const THUMB_MAX_BYTES = 2 * 1024 * 1024; // a larger image is offered as a download instead
  const DOWNLOAD_MAX_BYTES = 256 * 1024 * 1024; // held in the tab's memory: beyond it, use the CLI
  const THUMB_KINDS = ['image', 'sticker'];
  const THUMB_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'];
  const CACHE_MAX = 60; // thumbnails kept across re-renders (a table shows 20 rows)
  const thumbs = new Map(); // message id + sha256 -> Promise of an object URL

  const size = (n) => n == null ? '' : n < 1024 ? n + ' B' : n < 1048576 ? Math.round(n / 1024) + ' KB'
    : (n / 1048576).toFixed(1) + ' MB';

  // The answer's body, at most `max` bytes (a Content-Length over it is refused before reading).
  async function bounded (res, max, type) {
    const length = Number(res.headers.get('Content-Length'));
    if (length > max) {
      res.body.cancel();
      throw new Error('too large for this page (' + size(length) + ')');
    }
    const reader = res.body.getReader();
    const parts = [];
    let total = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) { reader.cancel(); throw new Error('too large for this page (over ' + size(max) + ')'); }
      parts.push(value);
    }
    return new Blob(parts, { type: type(res.headers.get('Content-Type') || '') });
  }

  function thumbnailUrl (key, fetcher) {
    let entry = thumbs.get(key);
    if (!entry) {
      entry = fetcher().then((res) => bounded(res, THUMB_MAX_BYTES, (t) => t.split(';')[0].trim().toLowerCase()))
        .then((blob) => {
          if (!THUMB_TYPES.includes(blob.type)) throw new Error('not an image this page shows (' + (blob.type || 'no type') + ')');
          return URL.createObjectURL(blob);
        });
      entry.catch(() => thumbs.delete(key)); // tried again at the next render
      thumbs.set(key, entry);
      while (thumbs.size > CACHE_MAX) {
        const [oldest, url] = thumbs.entries().next().value;
        thumbs.delete(oldest);
        url.then(URL.revokeObjectURL, () => {});
      }
    }
    return entry;
  }

  function thumbnail (m, fetcher, key) {
    const img = el('img', { class: 'thumb', alt: m.kind + (m.filename ? ': ' + m.filename : ''), hidden: '' });
    const note = el('span', { class: 'muted media-state', text: 'loading preview…' });
    const box = el('span', { class: 'thumb-box' }, img, note);
    const failed = (why) => {
      img.hidden = true;
      note.className = 'error media-state';
      note.textContent = 'Preview failed: ' + why;
      if (!box.querySelector('button')) box.append(' ', download(m, fetcher));
    };
    img.addEventListener('load', () => { img.hidden = false; note.remove(); });
    img.addEventListener('error', () => failed('the image cannot be shown'));
    thumbnailUrl(key, fetcher).then((url) => { img.src = url; }, (e) => failed(e.message));
    return box;
  }

  function fileName (m) {
    if (m.filename) return m.filename; // the browser makes it a safe file name
    const ext = (m.mimetype || '').split(';')[0].split('/')[1] || 'bin';
    return m.kind + '-' + m.id + '.' + ext.replace(/[^\w.-]/g, '');
  }

  function download (m, fetcher) {
    const button = el('button', { type: 'button', class: 'media-download', text: 'Download ' + (m.filename || m.kind) });
    const state = el('span', { class: 'muted media-state', role: 'status' });
    button.addEventListener('click', async () => {
      button.disabled = true;
      state.className = 'muted media-state';
      state.textContent = 'downloading…';
      try {
        const blob = await bounded(await fetcher(), DOWNLOAD_MAX_BYTES, () => 'application/octet-stream');
        const url = URL.createObjectURL(blob);
        const a = el('a', { href: url, download: fileName(m), hidden: '' });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        state.textContent = 'saved (' + size(blob.size) + ')';
      } catch (e) {
        state.className = 'error media-state';
        state.textContent = 'Download failed: ' + e.message;
      } finally {
        button.disabled = false;
      }
    });
    return el('span', { class: 'media-download-box' }, button, ' ', state);
  }

  // The cell of a message with media `m` (the message's own id is `id`); `fetcher()` GETs its bytes with
  // the key and resolves to the Response (or rejects with the gateway's error).
  function cell (id, m, fetcher) {
    m = Object.assign({}, m, { id });
    const meta = [m.kind, m.filename, m.mimetype, size(m.size)].filter(Boolean).join(' · ');
    const box = el('div', { class: 'media', 'data-kind': String(m.kind), 'data-media-state': String(m.state) });
    if (m.state === 'downloading') {
      box.append(el('span', { class: 'badge info', text: 'downloading' }), ' ');
    } else if (m.state === 'failed') {
      box.append(el('span', { class: 'badge bad', text: 'failed' }), ' ',
        el('span', { class: 'error media-error', text: m.error || 'the download from WhatsApp failed' }), ' ');
    } else if (THUMB_KINDS.includes(m.kind) && !(m.size > THUMB_MAX_BYTES)) {
      box.append(thumbnail(m, fetcher, id + ':' + (m.sha256 || '')), ' ');
    } else {
      box.append(download(m, fetcher), ' ');
    }
    box.append(el('span', { class: 'muted media-meta', text: meta }));
    if (m.caption) box.append(el('div', { class: 'text caption', text: m.caption }));
    return box;
  }

  function reset () { // the key is forgotten: nothing fetched with it stays
    for (const url of thumbs.values()) url.then(URL.revokeObjectURL, () => {});
    thumbs.clear();
  }

  return { cell, reset };
})();
