"""Description similarity: TF-IDF over item descriptions, cosine, top-k neighbours."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

#: Words as letters only: sizes and counts ('12', '3x') say little about the item.
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z]+\b"


def description_neighbours(descriptions: np.ndarray, *, top_k: int) -> sp.csr_matrix:
    """Cosine similarity of TF-IDF description vectors, keeping each item's top k.

    Args:
        descriptions: Item descriptions, str array of shape (n_items,).
        top_k: Neighbours kept per item (the item itself excluded).

    Returns:
        float32 CSR matrix of shape (n_items, n_items); row ``i`` holds the ``top_k``
        most similar other items to ``i`` with their cosine in (0, 1].
    """
    n_items = descriptions.shape[0]
    vectorizer = TfidfVectorizer(
        token_pattern=TOKEN_PATTERN, lowercase=True, sublinear_tf=True, norm="l2"
    )
    vectors = vectorizer.fit_transform(descriptions.astype(str))
    similarity = (vectors @ vectors.T).toarray().astype(np.float32)
    np.fill_diagonal(similarity, 0.0)

    # Keep the k largest per row; ties broken by index, zeros dropped.
    k = min(top_k, max(n_items - 1, 0))
    if k == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n_items), k)
    values = similarity[rows, top.ravel()]
    neighbours = sp.csr_matrix(
        (values, (rows, top.ravel())), shape=(n_items, n_items), dtype=np.float32
    )
    neighbours.eliminate_zeros()
    neighbours.sort_indices()
    return neighbours
