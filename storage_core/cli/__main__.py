"""``python -m storage_core.cli``, the same as the console script."""

import sys

from storage_core.cli import main

sys.exit(main())
