"""``python -m pulse`` is the ``pulse`` command."""

from pulse.cli.main import main

raise SystemExit(main())
