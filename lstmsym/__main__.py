import sys

from lstmsym.cli import main

sys.exit(main())
