"""python -m glit"""

import sys

from glit.cli import main

sys.exit(main())
