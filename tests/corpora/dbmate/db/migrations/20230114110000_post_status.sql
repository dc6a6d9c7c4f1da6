-- migrate:up
CREATE TYPE post_status AS ENUM ('draft', 'published');
ALTER TABLE posts ADD COLUMN status post_status NOT NULL DEFAULT 'draft';

-- migrate:down
ALTER TABLE posts DROP COLUMN status;
DROP TYPE post_status;
