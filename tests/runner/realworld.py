"""A corpus shaped like migrations found in public projects (Prisma and hand-written)."""

from __future__ import annotations

from pathlib import Path

# name -> SQL, exactly as such tools write them (never edited by the runner).
CORPUS: dict[str, str] = {
    # Prisma: 14-digit timestamp directories with migration.sql
    "20230101120000_init/migration.sql": (
        '-- CreateEnum\nCREATE TYPE "Role" AS ENUM (\'USER\', \'ADMIN\');\n\n'
        '-- CreateTable\nCREATE TABLE "User" (\n    "id" SERIAL NOT NULL,\n'
        '    "email" TEXT NOT NULL,\n    "role" "Role" NOT NULL DEFAULT \'USER\',\n\n'
        '    CONSTRAINT "User_pkey" PRIMARY KEY ("id")\n);\n\n'
        '-- CreateIndex\nCREATE UNIQUE INDEX "User_email_key" ON "User"("email");\n'
    ),
    # a file carrying its own transaction, CRLF line endings
    "20230102000000_posts.sql": (
        "BEGIN;\r\nCREATE TABLE posts (id serial PRIMARY KEY, author_id int REFERENCES \"User\"(id),"
        " title text NOT NULL);\r\nCREATE INDEX posts_author_idx ON posts (author_id);\r\nCOMMIT;\r\n"
    ),
    # enum label added here ...
    "20230103000000_add-moderator role.sql": 'ALTER TYPE "Role" ADD VALUE \'MODERATOR\';\n',
    # ... and used by the NEXT migration
    "20230103000001_promote moderators.sql": (
        "UPDATE \"User\" SET role = 'MODERATOR' WHERE email LIKE '%@mods.example';\n"
        "ALTER TABLE \"User\" ALTER COLUMN role SET DEFAULT 'MODERATOR';\n"
    ),
    # CONCURRENTLY alone in a file, recognised from the parse tree (no header)
    "20230104_posts_title_idx.sql": "CREATE INDEX CONCURRENTLY posts_title_idx ON posts (title);\n",
    # 8-digit prefix shared by two files: ordered by name
    "20230105_a_comments.sql": (
        "CREATE TABLE comments (id bigserial PRIMARY KEY, post_id int NOT NULL, body text);\n"
    ),
    "20230105_b_comments_fk.sql": (
        "ALTER TABLE comments ADD CONSTRAINT comments_post_fk FOREIGN KEY (post_id)"
        " REFERENCES posts(id) NOT VALID;\n"
        "ALTER TABLE comments VALIDATE CONSTRAINT comments_post_fk;\n"
    ),
    # double extension
    "20230106_drop_title_idx.sql.sql": "DROP INDEX CONCURRENTLY IF EXISTS posts_title_idx;\n",
    # a function body with semicolons and a dollar quote
    "20230107_touch_fn.sql": (
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        "  NEW.body := coalesce(NEW.body, '');\n  RETURN NEW;\nEND;\n$$;\n"
        "CREATE TRIGGER comments_touch BEFORE INSERT ON comments FOR EACH ROW"
        " EXECUTE FUNCTION touch();\n"
    ),
}


def write_corpus(directory: Path, corpus: dict[str, str] | None = None) -> Path:
    for name, text in (corpus or CORPUS).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return directory


def uniform_corpus() -> dict[str, str]:
    """CORPUS with every prefix widened to 14 digits, so numeric order is also date order."""
    out = {}
    for name, text in CORPUS.items():
        prefix, rest = name.split("_", 1)
        out[prefix.ljust(14, "0") + "_" + rest] = text
    return out
