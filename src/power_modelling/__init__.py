"""Layer-wise power and runtime prediction for CNNs on NVIDIA edge devices."""

__version__ = "0.1.0"
