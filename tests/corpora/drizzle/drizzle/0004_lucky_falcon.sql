ALTER TABLE "posts" ADD COLUMN "published_at" timestamp with time zone;
--> statement-breakpoint
ALTER TABLE "posts" ADD COLUMN "body" text DEFAULT '' NOT NULL;
