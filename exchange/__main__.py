"""`python -m exchange`: the same as the `cerx` command."""

import sys

from exchange.cli import main

sys.exit(main())
