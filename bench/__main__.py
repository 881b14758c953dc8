"""`python -m bench` — see bench/__init__.py and `python -m bench --help`."""

from __future__ import annotations

import sys

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
