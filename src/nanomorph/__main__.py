"""``python -m nanomorph``: the ``nanomorph`` command, for environments without its entry point."""

from nanomorph.cli import main

raise SystemExit(main())
