"""lightning-dims' tests: a package, so shared builders import as ``tests.helpers.<module>``."""
