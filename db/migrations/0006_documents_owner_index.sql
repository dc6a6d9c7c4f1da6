CREATE INDEX CONCURRENTLY IF NOT EXISTS documents_owner_id_idx ON documents (owner_id);
