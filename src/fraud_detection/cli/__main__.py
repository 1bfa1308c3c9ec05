"""`python -m fraud_detection.cli`: the same as `fraud-detection`."""

import sys

from fraud_detection.cli import main

sys.exit(main())
