"""alignpatterns: model-to-brain alignment and Alignment Pattern Analysis on video fMRI.

Importing the package imports neither torch nor timm; ``alignpatterns.features`` does.
"""

__version__ = "0.1.0"
