"""Live exchange accounts: credentials from the environment, and the sync that brings the
ledger to what an account holds (docs/live.md)."""
