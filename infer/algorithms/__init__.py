"""One file per algorithm, each exporting its State, Info, ``init``, ``build_kernel`` and
``as_top_level_api`` (what ``infer.<name>`` is)."""
