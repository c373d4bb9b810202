"""``python -m fercore.cli``."""

from fercore.cli import main

raise SystemExit(main())
