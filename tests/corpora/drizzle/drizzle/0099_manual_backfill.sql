UPDATE "users" SET "role" = 'admin' WHERE "email" LIKE '%@example.com';
