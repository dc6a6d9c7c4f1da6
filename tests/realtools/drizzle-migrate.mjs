// Drizzle's own migrator, as an app calls it: `node drizzle-migrate.mjs <migrationsFolder>`
// with DATABASE_URL set. Used by tests/adoption to migrate a database the runner then adopts.
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await migrate(drizzle(client), { migrationsFolder: process.argv[2] });
} finally {
  await client.end();
}
