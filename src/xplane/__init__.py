"""xplane: Crossplane's package system and composition-function runtime, rebuilt in Python."""

from xplane._version import __version__
from xplane.errors import XplaneError

__all__ = ["XplaneError", "__version__"]
