"""`python -m byoc_testenv` is the `byoc-testenv` command."""

import sys

from .cli import main

sys.exit(main())
