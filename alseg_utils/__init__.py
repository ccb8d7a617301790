"""alseg: region-based active learning with calibrated MC-dropout uncertainty for segmentation."""

__version__ = "0.1.0"
