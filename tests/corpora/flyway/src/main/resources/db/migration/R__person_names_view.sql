CREATE OR REPLACE VIEW person_names AS SELECT id, name FROM person;
