"""astrasim: a discrete-event network simulator for multi-device Transformer inference.

Not related to the ASTRA-sim training simulator: here ASTRA is the vector-quantized
mixed-precision inference scheme of Liu et al. (arXiv 2505.19342).
"""

__version__ = "0.1.0"
