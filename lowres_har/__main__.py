"""``python -m lowres_har`` is the ``lowres-har`` command."""

import sys

from lowres_har.cli import main

sys.exit(main())
