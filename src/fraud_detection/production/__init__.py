"""The production profile on one machine (`make production`): the services it needs started when they are not
running (`services.py`), then the whole system run on them, step by step as a user would (`run.py`)."""
