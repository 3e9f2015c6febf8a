// Hocuspocus 4 for bench/hocus_bench.py: `node server.mjs [--port 0] [--db DSN]`.
//
// In memory by default. With --db, @hocuspocus/extension-database keeps each document's Yjs
// state in PostgreSQL (table hocus_documents, through `pg`), stored as Hocuspocus does by
// default: debounced (2 s after the last change, at most 10 s), after the clients were answered.
// Prints `listening on ws://127.0.0.1:PORT` once it accepts connections; SIGTERM stores what is
// pending and exits.
import { Server } from "@hocuspocus/server";
import { Database } from "@hocuspocus/extension-database";
import pg from "pg";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const port = Number(arg("--port", "0"));
const dsn = arg("--db", "");
const extensions = [];
let pool = null;

if (dsn) {
  pool = new pg.Pool({ connectionString: dsn, max: 4 });
  await pool.query(
    "CREATE TABLE IF NOT EXISTS hocus_documents (name text PRIMARY KEY, data bytea NOT NULL)",
  );
  extensions.push(
    new Database({
      fetch: async ({ documentName }) => {
        const r = await pool.query("SELECT data FROM hocus_documents WHERE name = $1", [documentName]);
        return r.rows.length ? new Uint8Array(r.rows[0].data) : null;
      },
      store: async ({ documentName, state }) => {
        await pool.query(
          "INSERT INTO hocus_documents (name, data) VALUES ($1, $2)" +
            " ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data",
          [documentName, Buffer.from(state)],
        );
        stores += 1;
      },
    }),
  );
}

let stores = 0;
const server = new Server({
  port,
  address: "127.0.0.1",
  quiet: true,
  stopOnSignals: false,
  extensions,
});
await server.listen();
console.log(`listening on ws://127.0.0.1:${server.address.port}`);

async function stop() {
  await server.destroy(); // stores the documents still pending
  if (pool) {
    console.log(`stored ${stores} times`);
    await pool.end();
  }
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
