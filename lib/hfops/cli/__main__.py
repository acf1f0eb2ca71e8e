"""``python -m hfops.cli``: same as the ``hfops`` console script."""

import sys

from hfops.cli import main

sys.exit(main())
