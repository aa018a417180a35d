"""``python -m lightning_dims`` is the ``lightning-dims`` command."""

import sys

from lightning_dims.cli import main

sys.exit(main())
