"""The curve digitizer: scans in, curves out (CSV, LAS), and the renders it is scored on."""
