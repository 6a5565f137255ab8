"""Deep generative models of images in Flax NNX, their training loop and their evaluation."""
