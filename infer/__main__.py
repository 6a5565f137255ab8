"""``python -m infer ...``: the ``infer`` command, for an environment whose scripts are not on
the ``PATH``."""

import sys

try:
    from infer.cli import main
except KeyboardInterrupt:  # Ctrl-C while JAX loads: one line, as once the command runs
    print("\ninfer: interrupted while starting; nothing was run.", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
