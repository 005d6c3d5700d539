"""Moved to `smpdevice.sessions.screening`; this name stays an alias of that module, for programs
written against it."""

import sys

from smpdevice.sessions import screening as _moved

sys.modules[__name__] = _moved
