"""Imports ../shared/bench/torch_reference.py, the PyTorch reference of the chapter's runs, as
`ref`: from the bench/ folder beside $CONVKIT_DATA, else from ../shared/bench beside this
checkout. Use: `from shared_reference import ref`."""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
for _folder in (os.path.join(os.environ.get("CONVKIT_DATA", ""), "..", "bench"),
                os.path.join(_here, "..", "..", "shared", "bench")):
    if os.path.isfile(os.path.join(_folder, "torch_reference.py")):
        sys.path.insert(0, _folder)
        break
import torch_reference as ref  # noqa: E402,F401
