"""Analysis of sweep results: accuracy data, Pareto frontiers, capacity planning and plots."""
