# The release image: ONE artifact per commit, deployed by digest to the migration job and to
# every app. The role is chosen by the command (see README "The release image contract"):
# the job runs `python -m migration up ...`, the apps run their server. Nothing here migrates
# at start-up: there is deliberately no ENTRYPOINT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The runner (psycopg + pglast only; no Pulumi, no embedded PostgreSQL in the image).
COPY pyproject.toml README.md ./
COPY migration/ migration/
RUN pip install . gunicorn uvicorn
# The job runs `python -m migration` in /app, so it imports this copy, not site-packages';
# with PYTHONDONTWRITEBYTECODE and a non-root user no run can cache its bytecode, and every
# process would compile the runner again (~40 ms of an `up`): compile it once, here.
RUN python -m compileall -q migration

# The application's ordered migrations, read by the job from MIGRATION_DIR=/app/db/migrations.
COPY db/migrations/ db/migrations/
# Your application code goes here, e.g.: COPY app/ app/

USER 10001
EXPOSE 8000
# The ops endpoint is a safe default; each app sets its own command in the Pulumi program.
CMD ["python", "-m", "migration", "serve", "--host", "0.0.0.0", "--port", "8000"]
