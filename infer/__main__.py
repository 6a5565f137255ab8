"""``python -m infer ...``: the ``infer`` command, for an environment whose scripts are not on
the ``PATH``."""

import sys

from infer.cli import main

sys.exit(main())
