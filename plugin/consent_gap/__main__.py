"""`python -m consent_gap ...`: the same command line as the `consent-gap` script (cli.py), for
hosts where the script is not on PATH (a venv not activated, the container's scheduler)."""

import sys

from consent_gap.cli import main

sys.exit(main())
