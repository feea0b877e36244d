"""distilkit: distil large semantic-segmentation models into small, fast ones."""

__version__ = "0.1.0"
