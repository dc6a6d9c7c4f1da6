# The release image: ONE artifact per commit, deployed by digest to the migration job and to
# every app. The role is chosen by the command (docs/apps.md, "The release image contract"):
# the job runs `python -m migration up ...`, the apps run what their spec in Pulumi.<stack>.yaml
# names (`python -m sample_app` here). Nothing here migrates at start-up: there is deliberately
# no ENTRYPOINT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The runner (psycopg + pglast only; no Pulumi, no embedded PostgreSQL in the image) and the
# app servers of the lock (hash-checked; refresh with `make lock`), then the project itself
# (the runner and the sample app: standard library + psycopg) without resolving anything again.
COPY requirements/image.txt requirements/image.txt
RUN pip install --require-hashes -r requirements/image.txt
COPY pyproject.toml README.md ./
COPY migration/ migration/
COPY sample_app/ sample_app/
RUN pip install --no-deps --no-build-isolation .
# The job runs `python -m migration` in /app, so it imports this copy, not site-packages';
# with PYTHONDONTWRITEBYTECODE and a non-root user no run can cache its bytecode, and every
# process would compile the runner again (~40 ms of an `up`): compile it once, here.
RUN python -m compileall -q migration

# The application's ordered migrations, read by the job from MIGRATION_DIR=/app/db/migrations.
COPY db/migrations/ db/migrations/

USER 10001
EXPOSE 8000
# Each app and the job pass their own command; this default serves the sample app.
CMD ["python", "-m", "sample_app"]
