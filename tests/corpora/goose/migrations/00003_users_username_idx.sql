-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_updated_at_idx ON users (updated_at);

-- +goose Down
DROP INDEX CONCURRENTLY users_updated_at_idx;
