"""Human approval of risky runs: the question, remembered answers, the gate."""
