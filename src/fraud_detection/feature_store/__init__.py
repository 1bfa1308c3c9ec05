"""The feature store: Feast definitions, the catalog dataset that materializes them, the online readers and writer
of the serving path, and the one adapter that knows Feast's private names and storage formats."""
