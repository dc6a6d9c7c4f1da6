-- Uses the label added by 0003: with --single-transaction the runner declares a boundary.
UPDATE documents SET status = 'archived' WHERE status = 'draft' AND id < 0;
