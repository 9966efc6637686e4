"""``python -m genqueue`` (how ``genqueue up`` starts its children)."""

from genqueue.cli import main

raise SystemExit(main())
