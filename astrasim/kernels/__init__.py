"""The real PyTorch kernels whose measured times feed the simulator.

* :mod:`~astrasim.kernels.block` - reference pre-norm Transformer layer (MHA/GQA, GELU/SwiGLU,
  LayerNorm/RMSNorm, causal or not);
* :mod:`~astrasim.kernels.vq` - grouped vector quantization;
* :mod:`~astrasim.kernels.fused` - the fused C encode (`vq_nearest.c`), compiled on first use;
* :mod:`~astrasim.kernels.codes` - code indices bit-packed for the wire;
* :mod:`~astrasim.kernels.attention` - attention with log-sum-exp, masks, exact partial merge;
* :mod:`~astrasim.kernels.astra` - ASTRA's mixed-precision layer for N simulated devices, CLS pooling;
* :mod:`~astrasim.kernels.parallel` - the per-device block of every strategy, split into profiled ops;
* :mod:`~astrasim.kernels.split` - the token / head split rule.

See docs/kernels.md.
"""
