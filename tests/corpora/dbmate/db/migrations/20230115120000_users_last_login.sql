-- migrate:up
ALTER TABLE users ADD COLUMN last_login_at timestamptz;

-- migrate:down
ALTER TABLE users DROP COLUMN last_login_at;
