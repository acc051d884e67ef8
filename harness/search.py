"""``python -m harness.search``: see ``harness.cli.search``."""

import sys

from harness.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
