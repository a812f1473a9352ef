"""Offline evaluation of the recommender against baselines."""
