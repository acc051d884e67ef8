"""``python -m harness.validate``: see ``harness.cli.validate``."""

import sys

from harness.cli.validate import main

if __name__ == "__main__":
    sys.exit(main())
