"""``python -m askshift SUBCOMMAND ...``; subcommands are registered in askshift.cli."""

import sys

from askshift.cli import main

if __name__ == "__main__":
    sys.exit(main())
