"""The model, apart from everything around it: the torch network, the preprocessing fitted on training data, the
Lightning training system and data module. No Kedro, MLflow or Feast here."""
