"""A small generated corpus: reviews whose label follows planted words, for the text tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

FILLER = ("the dress arrived on monday and i tried it with my jeans the colour is blue "
          "fabric feels soft sleeves are long it was ordered online for a party").split()
PLANTED = {"good": ["wonderful", "perfect", "flattering", "love"],
           "bad": ["awful", "returned", "scratchy", "disappointed"],
           "meh": ["okay", "average", "fine", "plain"]}


def reviews(n: int = 300, classes: tuple[str, ...] = ("good", "bad"), noise: float = 0.05,
            seed: int = 0) -> pd.DataFrame:
    """`n` reviews: filler words and two of their label's planted words (a share `noise`
    of rows get another label's words), a numeric column and an id the job leaves out."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, n)
    texts = []
    for label in labels:
        source = rng.choice(classes) if rng.random() < noise else label
        words = list(rng.choice(FILLER, 12)) + list(rng.choice(PLANTED[source], 2))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    return pd.DataFrame({"review_id": np.arange(n), "stars": rng.integers(1, 6, n),
                         "review": texts, "label": labels})
