"""Transaction features: one definition (definitions.py), three engines that compute the stored state it needs
(polars_engine.py for batch, spark_engine.py for clusters, online.py for the streaming/online path)."""
