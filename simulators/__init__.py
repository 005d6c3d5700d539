"""The pen in software: firmware, physics and fault injection. Never imports smpdevice."""
