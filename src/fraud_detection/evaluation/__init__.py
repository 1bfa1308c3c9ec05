"""The handbook's evaluation protocol (Le Borgne et al., 2022, chapters 4-5): time folds with a label-delay gap, the
test set without cards already known to be compromised, and its metrics (AUC ROC, average precision, card
precision@k). Written from the published definitions; no code taken from the handbook."""
