"""The repository's sample application: a small HTTP API in the release image.

It is what the stack files deploy by default (``python -m sample_app``), and what ``make rehearse``
starts after the migration job succeeded: ``GET /healthz`` reports the release SHA
(``RELEASE_SHA``), ``GET /readyz`` answers 200 once the database is reachable, ``GET
/openapi.json`` describes the API with ``info.version`` = the release SHA, and ``GET
/api/documents`` reads the ``documents`` table that ``db/migrations`` create, so a smoke check
proves the app sees the migrated schema. Standard library plus psycopg (which the runner ships).
The app never migrates.
"""

from sample_app.web import SampleApp, openapi_document

__all__ = ["SampleApp", "openapi_document"]
