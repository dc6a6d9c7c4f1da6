ALTER TABLE widgets ADD COLUMN name text NOT NULL REFERENCES nowhere(id);
