"""Card fraud detection, end to end: a reference implementation of production ML system design."""

__version__ = "0.1.0"
