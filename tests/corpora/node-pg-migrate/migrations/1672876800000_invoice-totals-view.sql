-- Up Migration
CREATE VIEW account_totals AS
  SELECT a.id, a.name, coalesce(sum(i.amount_cents), 0) AS total_cents
  FROM accounts a LEFT JOIN invoices i ON i.account_id = a.id
  GROUP BY a.id, a.name;

-- Down Migration
DROP VIEW account_totals;
