"""Long-running suites that prove the service holds: load, faults and fuzz (``make load`` etc.).

They start real servers on loopback ports, drive them and print a pass/fail summary with numbers;
the exit status is 0 only when every check passed. See docs/suites.md.
"""
