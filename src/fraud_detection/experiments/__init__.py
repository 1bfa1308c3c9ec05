"""A/B experiments on the served variants: the statistics and the analysis of the labelled predictions."""
