"""Moved to `smpdevice.sessions.session`; this name stays an alias of that module, for programs
written against it."""

import sys

from smpdevice.sessions import session as _moved

sys.modules[__name__] = _moved
