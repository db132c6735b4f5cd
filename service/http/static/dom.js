'use strict';
// Shared by the shipped pages (/ and /docs), inlined before each page's own script
// (service/http/views/static_page.py): DOM building with textContent and attributes only, never innerHTML, so
// nothing from the API is ever parsed as HTML.
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') node.textContent = v; else node.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) node.append(kid);
  return node;
};
