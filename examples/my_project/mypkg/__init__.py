"""An example user project for ablate: a model, a dataset on disk, an optimizer and a warmup shape of its own."""
