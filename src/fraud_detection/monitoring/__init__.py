"""Monitoring: drift statistics, Evidently reports, and the decisions they lead to."""
