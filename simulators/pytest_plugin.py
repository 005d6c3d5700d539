"""pytest plugin (entry point `pytest11: pensim`): fixtures that start a simulated pen."""
