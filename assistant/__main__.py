"""`python -m assistant` is the same program as the `assistant` command."""

import sys

from .cli import main

sys.exit(main())
