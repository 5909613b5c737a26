"""Start-up objects leave the collector's passes; start-up garbage does not stay."""

from __future__ import annotations

import subprocess
import sys

_FREEZE = """
import gc
from roadmap_core.gc_freeze import freeze_startup_objects

class Node:
    pass

kept = [object() for _ in range(1000)]
garbage = Node()
garbage.me = garbage  # a cycle only a collection frees
del garbage
gc.disable()  # nothing collects the cycle behind our back
freeze_startup_objects()
frozen = gc.get_freeze_count()
gc.unfreeze()
alive = sum(isinstance(o, Node) for o in gc.get_objects())
print(frozen, alive)
"""


def test_startup_garbage_is_collected_and_the_rest_frozen() -> None:
    # A process of its own: freezing is for the whole interpreter.
    out = subprocess.run(
        [sys.executable, "-c", _FREEZE], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    frozen, cycles_left = int(out[0]), int(out[1])
    assert frozen >= 1000
    assert cycles_left == 0
