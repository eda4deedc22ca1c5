"""``python -m nanomorph``: the ``nanomorph`` command, for environments without its entry point."""

from nanomorph.cli import main

# Guarded, so that importing this module (as a spawned worker process may) runs nothing.
if __name__ == "__main__":
    raise SystemExit(main())
