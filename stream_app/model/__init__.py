"""The hybrid log-linear recommender: training, artifacts and vectorized scoring."""
