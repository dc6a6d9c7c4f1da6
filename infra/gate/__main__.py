"""``python -m infra.gate logs --sha <sha>``: see :mod:`infra.gate.followup`."""

from infra.gate.followup import main

raise SystemExit(main())
