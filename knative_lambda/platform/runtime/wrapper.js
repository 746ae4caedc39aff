// The in-instance wrapper for Node functions (DESIGN §2), same HTTP face as app.py.
// usage: node wrapper.js ENTRY_PATH [EXPORT]   (PORT env, default 0; prints "READY <port>")
'use strict';
const http = require('http');
const crypto = require('crypto');
const path = require('path');

const entry = path.resolve(process.argv[2]);
const mod = require(entry);
const exported = process.argv[3] || (typeof mod.handle === 'function' ? 'handle' : 'parse');
const fn = typeof mod === 'function' ? mod : mod[exported];
if (typeof fn !== 'function') {
  console.error(`${entry} exports no ${exported} function`);
  process.exit(1);
}
const prefix = process.env.KL_EVENT_PREFIX || 'network.notifi.lambda';
const source = `network.notifi.lambda/${process.env.K_SERVICE || 'function'}`;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

function normalize(result, contextId) {
  if (result && typeof result === 'object' && typeof result.succeeded === 'boolean') {
    if (contextId && !('contextId' in result)) result = { ...result, contextId };
    return [result, result.succeeded];
  }
  const entries = Array.isArray(result) ? result : result === undefined || result === null ? [] : [result];
  return [{ succeeded: true, contextId: contextId || null, eventEntries: entries }, true];
}

async function call(data, contextId) {
  try {
    return normalize(await fn(data), contextId);
  } catch (e) {
    return [{ succeeded: false, contextId: contextId || null, errorMessage: `${e && e.name}: ${e && e.message}` }, false];
  }
}

function send(res, status, body, headers) {
  const buf = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length, ...(headers || {}) });
  res.end(buf);
}

async function onEvent(req, raw, res) {
  const h = req.headers;
  let attrs, data;
  try {
    if ((h['content-type'] || '').startsWith('application/cloudevents')) {
      const doc = JSON.parse(raw.toString('utf8'));
      data = doc.data;
      attrs = doc;
    } else {
      attrs = {};
      for (const [k, v] of Object.entries(h)) if (k.startsWith('ce-')) attrs[k.slice(3)] = decodeURIComponent(v);
      data = raw.length ? JSON.parse(raw.toString('utf8')) : null;
    }
  } catch (e) {
    return send(res, 400, { error: `not a CloudEvent: ${e.message}` });
  }
  if (!attrs.id || !attrs.type || !attrs.source) return send(res, 400, { error: 'CloudEvent needs id, type and source' });
  const cid = UUID4.test(attrs.correlationid || '') ? attrs.correlationid : crypto.randomUUID();
  const [result, ok] = await call(data, cid);
  const sync = attrs.responsetype === 'sync';
  const kind = sync ? 'result' : ok ? 'processed' : 'error';
  const out = {
    'ce-specversion': '1.0', 'ce-id': crypto.randomUUID(), 'ce-type': `${prefix}.${kind}`,
    'ce-source': source, 'ce-subject': attrs.subject || attrs.parserid || 'function',
    'ce-time': new Date().toISOString(), 'ce-correlationid': cid,
  };
  for (const k of ['thirdpartyid', 'parserid', 'jobname']) if (attrs[k]) out[`ce-${k}`] = attrs[k];
  send(res, sync && !ok ? 500 : 200, result, out);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return send(res, 200, '{"status":"ok"}');
  if (req.method === 'GET' && req.url === '/readyz') return send(res, 200, '{"status":"ready"}');
  if (req.method !== 'POST' || !(req.url === '/' || req.url.startsWith('/events') || req.url.startsWith('/?'))) {
    return send(res, 404, { error: 'not found: POST / or /events' });
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const raw = Buffer.concat(chunks);
    const h = req.headers;
    if ('ce-specversion' in h || (h['content-type'] || '').startsWith('application/cloudevents')) return onEvent(req, raw, res);
    let data;
    try {
      data = raw.length ? JSON.parse(raw.toString('utf8')) : null;
    } catch (e) {
      return send(res, 400, { succeeded: false, errorMessage: `request body is not JSON: ${e.message}` });
    }
    const ctx = (data && (data.contextId || data.context_id)) || h['x-context-id'] || h['x-request-id'] || null;
    const [result, ok] = await call(data, ctx);
    send(res, ok ? 200 : 500, result);
  });
});
server.keepAliveTimeout = 75000;
server.listen(Number(process.env.PORT || 0), process.env.KL_LISTEN_HOST || '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
