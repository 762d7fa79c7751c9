"""edge_collector: measure per-layer power and runtime on the device, as a raw dataset.

Runs where the power-modelling project cannot be installed (a Jetson board with JetPack's
Python 3.8 or 3.10): Python >= 3.8, numpy, and the standard library. TensorRT, PyTorch and
nvidia-ml-py are imported only by the backend that uses them. Copy this folder to the device
and run ``python -m edge_collector --help``; the layout it writes is the project's
``docs/raw-data-format.md``. Guide: ``docs/collector.md``.
"""

__version__ = "0.1.0"
