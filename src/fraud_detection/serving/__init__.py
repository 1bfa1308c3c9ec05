"""Real-time inference: the BentoML service and its parts (IO schemas, decisions and fallback, A/B routing, the
prediction log)."""
