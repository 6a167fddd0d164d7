// A lab app whose image uses node-postgres (`pg` from npm, resolved through NODE_PATH):
// `web` serves HTTP, `worker` writes a row a second. The URL comes from DATABASE_URL
// (environment only); errors printed are the driver's own messages.
'use strict';

const http = require('http');
const { Client } = require('pg');

const role = process.argv[2] || 'web';
const say = (line) => process.stdout.write(`${role}: ${line}\n`);
const connectTimeout = Number(process.env.LAB_CONNECT_TIMEOUT_MS || 10000);

const appTableSql =
  "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
  "WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND c.relname <> 'lab_app_writes' " +
  'ORDER BY c.relname LIMIT 1';

async function connect() {
  say(`node-postgres ${require('pg/package.json').version}`);
  const client = new Client({
    connectionString: process.env.DATABASE_URL,
    connectionTimeoutMillis: connectTimeout,
  });
  // A driver that never answers is reported by the app, not waited on forever.
  const timer = setTimeout(() => {
    say(`cannot connect: no answer from the driver after ${connectTimeout} ms`);
    process.exit(1);
  }, connectTimeout + 2000);
  try {
    await client.connect();
  } catch (e) {
    say(`cannot connect: ${e && e.message ? e.message : e}`);
    process.exit(1);
  }
  clearTimeout(timer);
  client.on('error', (e) => {
    say(`connection lost: ${e.message}`);
    process.exit(1);
  });
  return client;
}

const quoteIdent = (name) => '"' + name.replace(/"/g, '""') + '"';

async function web() {
  const db = await connect();
  const port = Number(process.env.PORT);
  const answer = (res, code, body, kind) => {
    res.writeHead(code, { 'Content-Type': kind || 'application/json' });
    res.end(body);
  };
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === '/health') {
        await db.query('SELECT 1');
        answer(res, 200, 'ok\n', 'text/plain');
      } else if (req.url === '/') {
        const t = await db.query(appTableSql);
        const table = t.rows.length ? t.rows[0].relname : null;
        const out = { app: process.env.APP_NAME || null, table, rows: 0, sample: [] };
        if (table) {
          const q = quoteIdent(table);
          out.rows = Number((await db.query(`SELECT count(*) AS n FROM ${q}`)).rows[0].n);
          out.sample = (await db.query(`SELECT * FROM ${q} LIMIT 3`)).rows;
        }
        answer(res, 200, JSON.stringify(out) + '\n');
      } else {
        answer(res, 404, 'not found\n', 'text/plain');
      }
    } catch (e) {
      say(`query failed: ${e.message}`);
      answer(res, 500, `${e.message}\n`, 'text/plain');
    }
  });
  server.on('error', (e) => {
    say(`cannot listen: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, '127.0.0.1', () => say(`listening on 127.0.0.1:${port}`));
}

async function worker() {
  const db = await connect();
  const writer = `worker ${process.pid}`;
  try {
    await db.query(
      'CREATE TABLE IF NOT EXISTS lab_app_writes (id bigserial PRIMARY KEY, ' +
        'writer text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())',
    );
  } catch (e) {
    say(`cannot create lab_app_writes: ${e.message}`);
    process.exit(1);
  }
  say('writing a row a second into lab_app_writes');
  setInterval(() => {
    db.query('INSERT INTO lab_app_writes (writer) VALUES ($1)', [writer]).catch((e) =>
      say(`write failed: ${e.message}`),
    );
  }, 1000);
}

process.on('SIGTERM', () => process.exit(0));
(role === 'worker' ? worker : web)().catch((e) => {
  say(`failed: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
