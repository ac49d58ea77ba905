"""Run by test_killsafety in a child process: ``python -m tests.pkg.child_reconcile TMP``.

Opens ``TMP/state.db`` with the test settings, prints ``ready``, reconciles until settled, prints
the summary's ``settled``."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.pkg.support import control_plane


def main() -> None:
    tmp = Path(sys.argv[1])
    store, cp = control_plane(tmp)
    print("ready", flush=True)
    summary = cp.reconcile()
    print(f"settled={summary.settled}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
