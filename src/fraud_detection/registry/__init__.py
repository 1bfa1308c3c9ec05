"""The model registry (MLflow): registration with lineage, the promotion gate, aliases and rollback."""
