"""MLflow tracking of training runs: the candidate model as one pyfunc artifact (preprocessing + network), its
parameters, per-epoch metrics and lineage tags. The `register` stage takes it from here."""
