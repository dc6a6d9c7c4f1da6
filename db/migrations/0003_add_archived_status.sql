ALTER TYPE document_status ADD VALUE IF NOT EXISTS 'archived';
