"""features sub-package."""
