"""Models that share the ``infer`` core, in two wings: ``targets`` (posteriors with known
answers, their reference runs, and models with known evidence) and ``generative`` (deep
generative models of images, their training and their evaluation)."""
