"""The compute model: how long an op takes on a device, and what a device must hold.

* `analytic`: FLOPs and bytes of a Transformer layer's pieces.
* `profiles`: measured profile tables and their interpolation in tokens (ProfileCosts).
* `catalog`: the device catalog (profiles/devices.yaml).
* `roofline`: a device's roofline (Rate), per-device scaling of a fleet (Fleet), whole-profile
  scaling to another device (Roofline).
* `memory`, `partition`: per-device footprints and uneven splits.
* `hardware`: a point's per-device hardware, partition weights and scaling.
* `sources`: where a point's costs and traces come from, passed explicitly (Inputs).
"""
