"""The ceiling's rule for a hidden scenario-2 fraud (bench/quality_ceiling.py): a terminal's compromise is revealed
only once the first transaction of that compromise is labelled, whatever the terminal's older frauds."""

import numpy as np
from bench.quality_ceiling import compromise_revealed

DAY_US = 86_400_000_000
DELAY_US = 7 * DAY_US


def test_a_compromise_is_revealed_once_its_own_first_fraud_is_labelled():
    compromised = np.zeros((2, 60), dtype=bool)
    compromised[0, 2:30] = True  # terminal 0: a compromise from day 2 to day 29 ...
    compromised[0, 40:50] = True  # ... and another one later
    compromised[1, 5:10] = True  # terminal 1: two draws in a row make one compromise (days 5-14)
    compromised[1, 8:15] = True
    # (terminal, day, microseconds into the day)
    tx = [(0, 1, 0), (0, 3, 100), (0, 10, 99), (0, 10, 100), (0, 35, 0), (0, 41, 0), (0, 45, 0),
          (0, 48, 0), (1, 6, 0), (1, 14, 0)]  # fmt: skip
    terminal, day, moment = (np.array(column) for column in zip(*tx, strict=True))
    tx_us = day * DAY_US + moment
    revealed = compromise_revealed(compromised, terminal, day, tx_us, DELAY_US)
    assert revealed.tolist() == [
        False,  # day 1: not compromised yet
        False,  # day 3: the compromise's first transaction, not labelled until day 10 at 100 us
        False,  # a moment before that label
        True,  # the moment it is labelled
        False,  # day 35: the compromise is over
        False,  # day 41: a new compromise; the first one's labels tell nothing about it
        False,  # day 45: its first transaction (day 41) is labelled on day 48
        True,
        False,  # terminal 1: its first transaction in the compromise ...
        True,  # ... labelled by day 14, in the same unbroken compromise
    ]
