"""``python -m tlcourse ...`` — see :mod:`tlcourse.cli`."""

import sys

from tlcourse.cli import main

if __name__ == "__main__":
    sys.exit(main())
