"""`python -m genmedia_cli`: the same as the `genmedia` command."""

from __future__ import annotations

import sys

from genmedia_cli.main import main

sys.exit(main())
