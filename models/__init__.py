"""Models that share the ``infer`` core: target posteriors with known answers (``targets``)."""
