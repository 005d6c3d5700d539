"""Presentation: the technician's web console (static files under web/, served by
`smp serve`). Nothing below the service imports this package."""
