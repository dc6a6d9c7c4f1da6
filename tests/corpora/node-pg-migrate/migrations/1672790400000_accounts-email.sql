-- Up Migration
ALTER TABLE accounts ADD COLUMN email text;
COMMENT ON COLUMN accounts.email IS 'billing contact';

-- Down Migration
ALTER TABLE accounts DROP COLUMN email;
