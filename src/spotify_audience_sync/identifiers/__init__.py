"""The identifier rules and their hashing: pure data logic, no I/O and no HTTP."""
