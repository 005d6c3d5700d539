"""`python -m smpdevice` is `smp`."""

from smpdevice.entry import main

main()
