"""``python -m harness.data``: see ``harness.cli.data``."""

import sys

from harness.cli.data import main

if __name__ == "__main__":
    sys.exit(main())
