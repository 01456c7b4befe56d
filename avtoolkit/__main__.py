import sys

from avtoolkit.cli.main import main

sys.exit(main())
