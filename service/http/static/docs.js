// Renders /openapi.json with DOM calls only (textContent, never innerHTML): no text from the document is
// ever parsed as HTML. No external resource is loaded.
(function () {
  let spec = null;

  const refName = (ref) => ref.split('/').pop();
  const resolve = (schema) => (schema && schema.$ref) ? spec.components.schemas[refName(schema.$ref)] : schema;

  // A readable sketch of a schema: {field: type, ...} with nested models expanded a few levels.
  function shape (schema, depth, seen) {
    if (!schema) return 'any';
    if (schema.$ref) {
      const name = refName(schema.$ref);
      if (depth > 3 || seen.includes(name)) return name;
      return shape(resolve(schema), depth, seen.concat(name));
    }
    const pad = '  '.repeat(depth);
    for (const key of ['anyOf', 'oneOf', 'allOf']) {
      if (schema[key]) {
        const parts = schema[key].map((s) => shape(s, depth, seen));
        return key === 'allOf' ? parts[0] : parts.join(' | ');
      }
    }
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    if (schema.type === 'array') return shape(schema.items, depth, seen) + '[]';
    if (schema.type === 'object' || schema.properties) {
      const props = schema.properties || {};
      if (!Object.keys(props).length) {
        return schema.additionalProperties ? '{string: ' + shape(schema.additionalProperties, depth, seen) + '}' : 'object';
      }
      const req = schema.required || [];
      const lines = Object.entries(props).map(([k, v]) =>
        pad + '  ' + k + (req.includes(k) ? '' : '?') + ': ' + shape(v, depth + 1, seen));
      return '{\n' + lines.join(',\n') + '\n' + pad + '}';
    }
    let text = schema.type || 'any';
    const bounds = ['minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'format'].filter((b) => schema[b] !== undefined);
    if (bounds.length) text += ' (' + bounds.map((b) => b + ' ' + schema[b]).join(', ') + ')';
    return text;
  }

  function paramsTable (params) {
    const rows = params.map((p) => p.$ref ? spec.components.parameters[refName(p.$ref)] : p);
    return el('table', {},
      el('tr', {}, el('th', { text: 'Parameter' }), el('th', { text: 'In' }), el('th', { text: 'Schema' }), el('th', { text: 'Description' })),
      ...rows.map((p) => el('tr', {},
        el('td', {}, el('code', { text: p.name + (p.required ? '' : '?') })),
        el('td', { text: p.in }),
        el('td', {}, el('code', { text: shape(p.schema, 0, []) + (p.schema && p.schema.default !== undefined ? ' = ' + JSON.stringify(p.schema.default) : '') })),
        el('td', { text: p.description || '' }))));
  }

  function responses (resps) {
    const box = el('div');
    for (const [status, r] of Object.entries(resps)) {
      const content = r.content || {};
      const [type, media] = Object.entries(content)[0] || [];
      const codes = r['x-error-codes'];
      box.append(el('p', {}, el('strong', { text: status + ' ' }), el('span', { text: codes ? 'error: ' + codes.join(', ') : (r.description || '') }),
        type && !codes ? el('span', { class: 'muted', text: ' (' + type + ')' }) : null));
      if (media && !codes) box.append(el('pre', { text: shape(media.schema, 0, []) }));
    }
    return box;
  }

  function operation (method, path, op) {
    const body = el('div', { class: 'body' });
    if (op.description) body.append(el('p', { text: op.description }));
    if (op.parameters && op.parameters.length) body.append(el('h4', { text: 'Parameters' }), paramsTable(op.parameters));
    if (op.requestBody) {
      const media = op.requestBody.content['application/json'];
      body.append(el('h4', { text: 'Body (application/json' + (op.requestBody.required ? ')' : ', optional)') }),
        el('pre', { text: shape(media.schema, 0, []) }));
    }
    body.append(el('h4', { text: 'Responses' }), responses(op.responses));
    return el('details', { class: 'op' },
      el('summary', {}, el('span', { class: 'method ' + method, text: method.toUpperCase() }),
        el('span', { class: 'path', text: path }), el('span', { class: 'sum', text: op.summary || '' })),
      body);
  }

  function render () {
    const main = $('doc');
    const toc = $('toc');
    main.replaceChildren();
    toc.replaceChildren();
    main.append(el('p', { text: spec.info.description || '' }), el('p', { class: 'muted', text: 'Version ' + spec.info.version }));
    const byTag = new Map();
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const tag = (op.tags || ['Other'])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operation(method, path, op));
      }
    }
    for (const [tag, nodes] of byTag) {
      const id = 'tag-' + tag.toLowerCase();
      toc.append(el('a', { href: '#' + id, text: tag }));
      main.append(el('h2', { id, text: tag }), ...nodes);
    }
    toc.append(el('a', { href: '#webhooks', text: 'Webhook payloads' }));
    main.append(el('h2', { id: 'webhooks', text: 'Webhook payloads' }));
    for (const [name, item] of Object.entries(spec.webhooks || {})) {
      const op = item.post;
      main.append(el('details', { class: 'op' },
        el('summary', {}, el('span', { class: 'method post', text: 'POST' }), el('span', { class: 'path', text: name }),
          el('span', { class: 'sum', text: op.summary || '' })),
        el('div', { class: 'body' }, el('p', { text: op.description || '' }), paramsTable(op.parameters),
          el('pre', { text: shape(op.requestBody.content['application/json'].schema, 0, []) }))));
    }
  }

  async function load (key) {
    $('state').textContent = 'loading...';
    const res = await fetch('/openapi.json', { headers: { 'X-API-Key': key }, cache: 'no-store' });
    if (!res.ok) {
      let why = res.status + '';
      try { why += ' ' + (await res.json()).error.code; } catch (e) { /* not JSON */ }
      $('state').textContent = 'refused: ' + why;
      return;
    }
    spec = await res.json();
    sessionStorage.setItem('wa-gateway-key', key);
    $('state').textContent = 'loaded';
    render();
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    load($('key').value.trim()).catch((err) => { $('state').textContent = 'failed: ' + err.message; });
  });
  const saved = sessionStorage.getItem('wa-gateway-key');
  if (saved) { $('key').value = saved; load(saved).catch(() => {}); }
})();
