"""The audit trail: every execution recorded, crash-safe and tamper-evident."""
