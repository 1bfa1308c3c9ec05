"""The feature store: Feast definitions, the catalog dataset that materializes them, the online readers and writer
of the serving path, and the one adapter that knows Feast's private names and storage formats."""

import warnings

# Known and harmless, once per retrieval otherwise: ibis calls duckdb's deprecated fetch_arrow_table() (inside Feast's
# offline store), and Feast flags the on-demand view (our one definition of the features; see docs/stages/features.md)
warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="On demand feature view is an experimental feature", category=RuntimeWarning)
