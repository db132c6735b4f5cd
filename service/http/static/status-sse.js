// The status page's Server-Sent Events parser, inlined before status.js (status-stream.js reads its event stream with fetch()
// because an EventSource cannot send the key's header). The WHATWG rules this stream uses: lines end in \r\n, \n or \r;
// "field: value" with one leading space dropped; a blank line dispatches the event; ":" starts a comment.
function sseParser (dispatch) {
  let buffer = '';
  let data = [];
  let type = '';
  let id = null;
  function line (text) {
    if (text === '') {
      if (data.length) dispatch({ id, type: type || 'message', data: data.join('\n') });
      data = []; type = ''; id = null;
      return;
    }
    if (text[0] === ':') return;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  }
  return function feed (chunk) {
    buffer += chunk;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i + 1 === buffer.length) break; // perhaps the first half of \r\n: wait for more
      line(buffer.slice(start, i));
      if (c === '\r' && buffer[i + 1] === '\n') i++;
      start = i + 1;
    }
    buffer = buffer.slice(start);
  };
}
