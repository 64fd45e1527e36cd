"""synth sub-package."""
