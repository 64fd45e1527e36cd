"""patterns sub-package."""
