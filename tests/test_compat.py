"""The torchvision guard: lightning/torchmetrics/timm import through lowres_har, warning at most once."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import lowres_har
    from lowres_har._compat import ensure_torchvision
    import lightning, torchmetrics, timm, torchvision
    from torchvision.models.video import r3d_18
    r3d_18()
    again = ensure_torchvision()
ours = [w for w in caught if "C extension could not be loaded" in str(w.message)]
from lowres_har._compat import _state
print("PATCHED", _state["patched"], "WARNINGS", len(ours), "AGAIN", again)
"""


def test_guard_lets_the_stack_import_and_warns_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOWRES_HAR_TORCHVISION_WARNED"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1].split()
    patched, warnings, again = line[1] == "True", int(line[3]), line[5]
    # warns exactly when it had to patch, and only once; the second call reports the same state
    assert warnings == (1 if patched else 0)
    assert again == str(patched)


def test_guard_is_a_noop_when_extension_loads_or_absent() -> None:
    script = (
        "import sys, importlib.util\n"
        "sys.modules['torchvision'] = None\n"  # pretend torchvision is absent
        "from lowres_har._compat import ensure_torchvision\n"
        "print(ensure_torchvision())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("False")


def test_child_processes_do_not_repeat_the_warning() -> None:
    env = dict(os.environ, LOWRES_HAR_TORCHVISION_WARNED="1")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1].split()
    assert int(line[3]) == 0  # still patched when needed, but silent
