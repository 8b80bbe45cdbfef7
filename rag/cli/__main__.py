"""``python -m rag.cli``: the ``rag`` command."""

import sys

from .main import main

sys.exit(main())
