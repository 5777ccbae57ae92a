"""``python -m zooserve COMMAND ...``: the same as the ``zooserve`` console script (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
