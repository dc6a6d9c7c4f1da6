-- Up Migration
CREATE TYPE invoice_status AS ENUM ('open', 'paid', 'void');
ALTER TABLE invoices ADD COLUMN status invoice_status NOT NULL DEFAULT 'open';

-- Down Migration
ALTER TABLE invoices DROP COLUMN status;
DROP TYPE invoice_status;
