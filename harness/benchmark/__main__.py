"""``python -m harness.benchmark``: see ``harness.cli.benchmark``."""

import sys

from harness.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
