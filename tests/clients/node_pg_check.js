// node-postgres (`pg`): parameterized queries over the extended protocol.
// Usage: NODE_PATH=<dir with node_modules> node node_pg_check.js PORT VIEW
// Prints one JSON object with what it read.
const { Client } = require('pg');

async function main() {
  const [port, view] = process.argv.slice(2);
  const client = new Client({ host: '127.0.0.1', port: Number(port), user: 'sluice', database: 'sluice' });
  await client.connect();
  const out = {};
  const all = await client.query(`SELECT k, n FROM ${view} ORDER BY k`);
  out.all = all.rows.map((r) => [r.k, Number(r.n)]);
  const some = await client.query(`SELECT k, n FROM ${view} WHERE k >= $1 AND k < $2 ORDER BY k`, ['k1', 'k3']);
  out.some = some.rows.map((r) => [r.k, Number(r.n)]);
  const named = { name: 'by-bucket', text: `SELECT n FROM ${view} WHERE k = $1`, values: ['k2'] };
  out.named = [];
  for (let i = 0; i < 3; i++) {
    const r = await client.query(named);
    out.named.push(Number(r.rows[0].n));
  }
  const text = await client.query('SELECT $1::text AS t, $2::bigint + 1 AS i, current_database() AS db', ["it's", 41]);
  out.text = text.rows[0];
  try {
    await client.query('SELECT * FROM no_such_view WHERE x = $1', [1]);
  } catch (e) {
    out.error = { code: e.code, message: e.message };
  }
  await client.end();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
