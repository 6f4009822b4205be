"""The devices a user owns: which of them to use, in what order, split how (astrasim plan with an
`inventory:`), "what if I add one?" (astrasim whatif) and energy per token.

Modules, one concept each:
  inventory   the plan with `inventory:` (what the user owns, the networks joining it, the workload,
              objective and constraints), loaded and checked against the catalogs
  candidates  a placement (devices in order, strategy and knobs, network) and its scenario Point
  stages      contiguous layer ranges for pipeline stages by dynamic programming
  bounds      cheap analytic lower bounds on a candidate's latency (no simulation)
  search      the search: exhaustive where small, else bound-pruned; simulations on the sweep's executors
  energy      energy per device and in total (busy/idle power, Wi-Fi radio airtime)
  whatif      best placement before and after adding, removing or re-networking devices, and why
  pictures    the chosen placement drawn, and the latency / price / energy frontier
"""
