"""``python -m tokenware``: the ``tokenware`` command."""

from __future__ import annotations

import sys

from tokenware.cli import main

if __name__ == "__main__":
    sys.exit(main())
