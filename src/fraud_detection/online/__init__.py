"""Online learning: a copy of the champion that keeps learning from the outcome stream, behind guardrails."""
