DROP TABLE address;
