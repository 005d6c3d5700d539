"""Moved to `smpdevice.sessions.profiles`; this name stays an alias of that module, for programs
written against it."""

import sys

from smpdevice.sessions import profiles as _moved

sys.modules[__name__] = _moved
