"""`python -m workbench ...` is the `workbench` command (so `torchrun -m workbench run SPEC` works)."""

import sys

from workbench.cli import main

sys.exit(main())
