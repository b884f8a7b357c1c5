"""Phone numbers to E.164: libphonenumber's rules, vectorized (exact, fast, native, decide)."""
