"""smpdevice: host-side controller for a serial-connected rotary micropigmentation pen."""

__version__ = "0.1.0"
