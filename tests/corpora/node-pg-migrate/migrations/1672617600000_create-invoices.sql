-- Up Migration
CREATE TABLE invoices (
  id serial PRIMARY KEY,
  account_id integer NOT NULL REFERENCES accounts ON DELETE CASCADE,
  amount_cents integer NOT NULL CHECK (amount_cents >= 0)
);
CREATE INDEX invoices_account_id_index ON invoices (account_id);

-- Down Migration
DROP TABLE invoices;
