-- Up Migration
CREATE TABLE accounts (
  id serial PRIMARY KEY,
  name varchar(100) NOT NULL,
  created_at timestamp NOT NULL DEFAULT current_timestamp
);

-- Down Migration
DROP TABLE accounts;
