CREATE TABLE address (
    id INT PRIMARY KEY,
    person_id INT NOT NULL,
    city VARCHAR(100)
);
