// Starts a real AT Protocol network for chatbot's integration tests: the
// reference PLC directory, a PDS and the bsky AppView (on PostgreSQL), plus
// the bsync and ozone services the AppView needs, from @atproto/dev-env.
//
// Everything listens on 127.0.0.1 only. A small HTTP control endpoint (also on
// 127.0.0.1) lets the Python tests drive the network:
//   GET  /health          -> {"ok": true}
//   POST /process-all     -> waits until the AppView has indexed everything
//   POST /create-account  {handle, password, email?} -> {did, handle}
//
// When ready it prints one JSON line with the URLs on stdout (and writes the
// same JSON to --ready-file if given). SIGTERM or SIGINT closes the network and
// exits 0. Started and stopped by tests/servers/manage.py; installed by
// tests/servers/install.
//
// Usage: node atproto-network.mjs --modules DIR [--db-url URL] [--db-schema S]
//          [--plc-port N] [--pds-port N] [--bsky-port N] [--ozone-port N]
//          [--control-port N] [--ready-file PATH] [--parent-pid PID]
// Each option may also come from the environment: ATPROTO_MODULES,
// DB_POSTGRES_URL, DB_POSTGRES_SCHEMA, ATPROTO_PLC_PORT, ATPROTO_PDS_PORT,
// ATPROTO_BSKY_PORT, ATPROTO_OZONE_PORT, ATPROTO_CONTROL_PORT. Ports left out
// (or 0) are chosen free by dev-env.

import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const LOOPBACK = '127.0.0.1';

// dev-env's servers call listen(port) with no host, which binds every
// interface. Give any listen without a loopback host 127.0.0.1 instead.
const isLoopback = (host) =>
  host === 'localhost' || host === '::1' || (typeof host === 'string' && host.startsWith('127.'));
const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  if (first === undefined || typeof first === 'function') {
    // listen() / listen(cb): a random port on every interface.
    args.unshift(0, LOOPBACK);
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') {
      if (!isLoopback(args[1])) args[1] = LOOPBACK;
    } else {
      args.splice(1, 0, LOOPBACK);
    }
  } else if (first !== null && typeof first === 'object' && !(first instanceof net.Server)
    && first.path === undefined && first.fd === undefined && first.handle === undefined
    && first._handle === undefined) {
    if (!isLoopback(first.host)) args[0] = { ...first, host: LOOPBACK };
  }
  return originalListen.apply(this, args);
};
// The services talk to each other as http://localhost:PORT; resolve that to
// the IPv4 loopback they listen on rather than ::1.
dns.setDefaultResultOrder('ipv4first');

const { values: opts } = parseArgs({
  options: {
    modules: { type: 'string', default: process.env.ATPROTO_MODULES },
    'db-url': { type: 'string', default: process.env.DB_POSTGRES_URL },
    'db-schema': { type: 'string', default: process.env.DB_POSTGRES_SCHEMA || 'chatbot' },
    'plc-port': { type: 'string', default: process.env.ATPROTO_PLC_PORT },
    'pds-port': { type: 'string', default: process.env.ATPROTO_PDS_PORT },
    'bsky-port': { type: 'string', default: process.env.ATPROTO_BSKY_PORT },
    'ozone-port': { type: 'string', default: process.env.ATPROTO_OZONE_PORT },
    'control-port': { type: 'string', default: process.env.ATPROTO_CONTROL_PORT },
    'ready-file': { type: 'string' },
    'parent-pid': { type: 'string' },
  },
});

const fail = (message) => {
  process.stderr.write(`atproto-network: ${message}\n`);
  process.exit(2);
};
const port = (name) => {
  const raw = opts[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`--${name} must be a port, got ${raw}`);
  return n === 0 ? undefined : n;
};

if (!opts['db-url']) fail('--db-url (or DB_POSTGRES_URL) is required: postgresql://USER@127.0.0.1:PORT/DB');
// dev-env prefixes it (bsync_, appview_, ozone_); Postgres schemas there
// must match [A-Za-z_].
if (!/^[A-Za-z_]+$/.test(opts['db-schema'])) fail(`--db-schema must match [A-Za-z_]+, got ${opts['db-schema']}`);
if (!opts.modules) fail('--modules (or ATPROTO_MODULES) must name the folder holding node_modules/@atproto/dev-env; run tests/servers/install');
// dev-env asserts REDIS_HOST is set, but nothing in this setup uses Redis.
process.env.REDIS_HOST ??= `${LOOPBACK}:1`;

const requireFromTree = createRequire(path.join(path.resolve(opts.modules), 'package.json'));
let devEnv;
try {
  devEnv = await import(pathToFileURL(requireFromTree.resolve('@atproto/dev-env')).href);
} catch (err) {
  fail(`cannot load @atproto/dev-env from ${opts.modules} (${err.message}); run tests/servers/install`);
}

process.on('unhandledRejection', (err) => {
  process.stderr.write(`atproto-network: unhandled rejection: ${err?.stack ?? err}\n`);
});

// Only pass the ports that were asked for: dev-env spreads these objects over
// its own defaults, so an explicit `port: undefined` would erase the port it
// picked.
const withPort = (p, extra = {}) => (p ? { port: p, ...extra } : {});
const bskyPort = port('bsky-port');
const params = {
  dbPostgresUrl: opts['db-url'],
  dbPostgresSchema: opts['db-schema'],
  plc: withPort(port('plc-port')),
  pds: { hostname: 'localhost', ...withPort(port('pds-port')) },
  bsky: withPort(bskyPort, { publicUrl: `http://localhost:${bskyPort}` }),
  ozone: withPort(port('ozone-port')),
};

const started = Date.now();
const network = await devEnv.TestNetwork.create(params);

// One operation at a time: processAll and createAccount share the PDS's
// sequencer and the AppView's subscription.
let queue = Promise.resolve();
const serialized = (fn) => {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
};

const readBody = (req) =>
  new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(Object.assign(new Error(`invalid JSON body: ${err.message}`), { status: 400 }));
      }
    });
    req.on('error', reject);
  });

const send = (res, status, body) => {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
};

const routes = {
  'GET /health': async () => ({ ok: true }),
  'POST /process-all': async () => {
    await serialized(() => network.processAll());
    return { ok: true };
  },
  'POST /create-account': async (body) => {
    const { handle, password } = body;
    if (typeof handle !== 'string' || typeof password !== 'string') {
      throw Object.assign(new Error('handle and password (strings) are required'), { status: 400 });
    }
    const email = typeof body.email === 'string' ? body.email : `${handle.split('.')[0]}@example.test`;
    const res = await serialized(async () => {
      const created = await network.pds.getAgent().com.atproto.server.createAccount({ handle, email, password });
      await network.processAll();
      return created;
    });
    return { did: res.data.did, handle: res.data.handle };
  },
};

const control = http.createServer(async (req, res) => {
  const route = routes[`${req.method} ${new URL(req.url, 'http://x').pathname}`];
  if (!route) return send(res, 404, { error: 'NotFound', message: `no route ${req.method} ${req.url}` });
  try {
    send(res, 200, await route(await readBody(req)));
  } catch (err) {
    const status = err.status ?? err.response?.status ?? 500;
    send(res, status >= 400 && status < 600 ? status : 500, {
      error: err.error ?? err.name ?? 'Error',
      message: err.message ?? String(err),
    });
  }
});
await new Promise((resolve, reject) => {
  control.once('error', reject);
  control.listen(port('control-port') ?? 0, LOOPBACK, resolve);
});

const info = {
  pds_url: network.pds.url,
  bsky_url: network.bsky.url,
  plc_url: network.plc.url,
  ozone_url: network.ozone.url,
  control_url: `http://${LOOPBACK}:${control.address().port}`,
  pid: process.pid,
  start_ms: Date.now() - started,
};
if (opts['ready-file']) {
  const tmp = `${opts['ready-file']}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info));
  fs.renameSync(tmp, opts['ready-file']);
}
process.stdout.write(`${JSON.stringify(info)}\n`);

let closing = false;
const shutdown = async (signal) => {
  if (closing) return;
  closing = true;
  process.stderr.write(`atproto-network: ${signal}, closing\n`);
  // network.close() first drains the AppView; don't let a stuck service keep
  // the process alive.
  const timer = setTimeout(() => process.exit(0), 10_000);
  timer.unref();
  control.close();
  control.closeAllConnections?.();
  try {
    await network.close();
  } catch (err) {
    process.stderr.write(`atproto-network: error while closing: ${err?.stack ?? err}\n`);
  }
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

// If whoever started us dies without stopping us, stop too.
const parentPid = Number(opts['parent-pid'] || 0);
if (parentPid > 0) {
  setInterval(() => {
    try {
      process.kill(parentPid, 0);
    } catch (err) {
      if (err.code === 'ESRCH') void shutdown('parent gone');
    }
  }, 1000).unref();
}
