"""Sessions: treatment profiles (`profiles`, `profile_checks`), the screening (`screening`),
a treatment session with every pass recorded (`session`), resuming an interrupted one
(`resume`), its summary and close record (`session_records`) and the aftercare sheet
(`aftercare`). Import from the modules: this package loads none of them itself, so a command
that needs only a profile does not import the controller."""
