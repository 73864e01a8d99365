"""The core: one revision graph, one history store, a pure planner and the executor that runs plans."""
