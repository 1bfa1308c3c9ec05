"""Card transaction simulator after Le Borgne et al., "Reproducible Machine Learning for Credit Card Fraud
Detection - Practical Handbook" (ULB, 2022), chapter 3. Written from the published rules; no code copied."""
