"""The pytest suite of mome (a package, so that its helpers are imported by their full name)."""
