CREATE TABLE IF NOT EXISTS sessions(
   id bigserial PRIMARY KEY,
   user_id integer NOT NULL REFERENCES users(user_id),
   expires_at timestamptz NOT NULL
);
