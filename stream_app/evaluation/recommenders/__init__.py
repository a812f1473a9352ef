"""Evaluated methods: baselines beside the adapter for the product's model."""

from stream_app.evaluation.recommenders.base import ItemScores, Recommender
from stream_app.evaluation.recommenders.popularity import PersonalTopFreq, TopFreq
from stream_app.evaluation.recommenders.product import (
    ProductModel,
    ProductModelUnavailableError,
)
from stream_app.evaluation.recommenders.sar import SAR
from stream_app.evaluation.recommenders.tifuknn import TifuKnn, TifuParams

__all__ = [
    "SAR",
    "ItemScores",
    "PersonalTopFreq",
    "ProductModel",
    "ProductModelUnavailableError",
    "Recommender",
    "TifuKnn",
    "TifuParams",
    "TopFreq",
]
