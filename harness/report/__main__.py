"""``python -m harness.report``: see ``harness.cli.report``."""

import sys

from harness.cli.report import main

sys.exit(main())
