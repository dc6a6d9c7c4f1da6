-- Up Migration
ALTER TABLE invoices ADD COLUMN due_on date;

-- Down Migration
ALTER TABLE invoices DROP COLUMN due_on;
