"""Human approval of risky runs: the question, remembered answers, the gate, and the gate's cached decisions."""
