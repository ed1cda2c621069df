"""``python -m nnbackend``: the same as the ``nnbackend`` command."""

import sys

from .cli import main

sys.exit(main())
