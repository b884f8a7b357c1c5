"""Mirror sync, the one orchestrator, and the state that makes scheduled runs safe."""
