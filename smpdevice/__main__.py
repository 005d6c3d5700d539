"""`python -m smpdevice` is `smp`."""

from smpdevice.cli import main

main()
