"""The loop back: label events (outcomes with the time they became known), their stream and its consumer, and the
served predictions joined with their outcomes."""


class TrafficError(ValueError):
    """The world cannot continue: a source that is not the simulator, a state that does not match the data, a
    service that does not answer."""
