"""``python -m openai_compat`` is the ``openai-compat`` command."""

from .cli import main

raise SystemExit(main())
