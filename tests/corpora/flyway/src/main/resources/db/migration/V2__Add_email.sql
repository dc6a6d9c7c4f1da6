ALTER TABLE person ADD COLUMN email VARCHAR(200);
CREATE UNIQUE INDEX person_email_idx ON person (email);
