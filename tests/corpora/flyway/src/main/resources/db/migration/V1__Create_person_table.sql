CREATE TABLE person (
    id INT NOT NULL,
    name VARCHAR(100) NOT NULL
);
