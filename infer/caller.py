"""Where a warning points: at the user's line that called infer, however deep in infer it
was raised (``warnings.warn(..., skip_file_prefixes=INFER_FRAMES)``), rather than at a
fixed ``stacklevel``, which pointed inside infer whenever a call gained a level."""

from __future__ import annotations

import os

#: The file-name prefix of every frame in the infer package: skipped when a warning is placed.
INFER_FRAMES = (os.path.dirname(os.path.abspath(__file__)) + os.sep,)
