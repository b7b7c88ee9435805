"""An offline stand-in for the Qwen2 tokenizer: a small byte-level BPE plus the real Qwen special tokens.

The real tokenizer (151k tokens) lives on the hub, which tests cannot reach. What conversion and inference
depend on is not the vocabulary but its shape: Qwen2's byte-level pre-tokenization (so any UTF-8 text,
Chinese included, round-trips), the special tokens as single ids, eos/pad as the real tokenizer_config sets
them, and the `Qwen2Tokenizer` class that `AutoTokenizer` returns for a real Qwen2 folder. Training is
deterministic (fixed corpus, no dropout), so every build writes the same bytes.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase, Qwen2Tokenizer

log = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
VISION_PAD = "<|vision_pad|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
AUDIO_BOS = "<|audio_bos|>"
AUDIO = "<|AUDIO|>"
AUDIO_EOS = "<|audio_eos|>"

# In the order Qwen2-VL numbers them (151643...151656), then the three audio tokens. They get ids right after
# the BPE vocabulary, as in the real tokenizer.
SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    VISION_START,
    VISION_END,
    VISION_PAD,
    IMAGE_PAD,
    VIDEO_PAD,
    AUDIO_BOS,
    AUDIO,
    AUDIO_EOS,
)

# Requested size of the trained BPE vocabulary (256 byte symbols plus merges). The corpus is small, so the
# trainer may stop a little short; the result is still the same every time.
BPE_VOCAB_SIZE = 640

# A few lines of the kind of text the assistant hears and says, in English and Chinese, so common words and
# CJK characters become single tokens and decoding has something real to round-trip.
_CORPUS: tuple[str, ...] = (
    "You are a helpful assistant.",
    "What's the capital of Peru? The capital of Peru is Lima.",
    "How do I say thank you in Japanese? You say arigatou gozaimasu.",
    "What does this error on my screen mean?",
    "Summarise this window for me, please.",
    "Read me the numbers in this table.",
    "Describe this image. The picture shows a cat sitting on a red chair.",
    "What is happening in this video? A person is walking a dog in the park.",
    "What's that sound? It is the sound of glass breaking.",
    "Detect the language and recognize the speech.",
    "The weather today is sunny with a light breeze, and the temperature is twenty degrees.",
    "Set a timer for ten minutes and remind me to call my mother.",
    "The quick brown fox jumps over the lazy dog.",
    "I can help you with questions about your screen, images, videos and audio.",
    "Open the settings, then click on the network tab and check the connection.",
    "There are three rows and four columns; the total is 1,234.56 dollars.",
    "Error: file not found. Check the path and try again.",
    "Thank you! You're welcome. Have a nice day.",
    "你好,我是一个有用的助手。",
    "秘鲁的首都是哪里?秘鲁的首都是利马。",
    "我的屏幕上显示的这个错误是什么意思?",
    "请帮我总结一下这个窗口的内容。",
    "请读出这个表格里的数字。",
    "这张图片里有一只猫坐在红色的椅子上。",
    "这个视频里发生了什么?一个人在公园里遛狗。",
    "这是什么声音?这是玻璃破碎的声音。",
    "今天天气很好,阳光明媚,气温二十度。",
    "用日语怎么说谢谢?日语说ありがとう。",
    "谢谢你!不客气,祝你有美好的一天。",
    "我可以回答关于你的屏幕、图片、视频和音频的问题。",
)


def training_corpus() -> list[str]:
    """The built-in corpus, repeated so frequent pairs clear the trainer's minimum frequency."""
    return [line for _ in range(3) for line in _CORPUS]


def train_byte_level_bpe(vocab_size: int = BPE_VOCAB_SIZE) -> Tokenizer:
    """Train a BPE with Qwen2's normalizer, pre-tokenizer and decoder on the built-in corpus.

    The pipeline matches what `Qwen2Tokenizer` rebuilds around a vocabulary when it loads one, so the saved
    tokenizer behaves the same before and after a save/load round trip.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tokenizer.train_from_iterator(training_corpus(), trainer=trainer)
    log.debug("trained byte-level BPE with %d tokens", tokenizer.get_vocab_size())
    return tokenizer


def build_qwen2_tokenizer(
    *,
    eos_token: str = IM_END,
    model_max_length: int = 32768,
    padding_side: str = "right",
    chat_template: str | None = None,
) -> Qwen2Tokenizer:
    """Build the tiny tokenizer as the transformers `Qwen2Tokenizer` class, special tokens after the BPE ids.

    `eos_token` differs between checkpoints: Qwen2-VL-Instruct's tokenizer_config says ``<|im_end|>``, the
    `Qwen2Tokenizer` default is ``<|endoftext|>``. The pad token is ``<|endoftext|>`` and there is no bos or
    unk token, as in the real ones.
    """
    from transformers import AddedToken, Qwen2Tokenizer

    backend = train_byte_level_bpe()
    model = json.loads(backend.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    merges = [tuple(pair) if isinstance(pair, list) else tuple(pair.split(" ")) for pair in model["merges"]]
    first_special = len(vocab)
    added = {
        first_special + i: AddedToken(token, special=True, normalized=False) for i, token in enumerate(SPECIAL_TOKENS)
    }
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=eos_token,
        pad_token=ENDOFTEXT,
        added_tokens_decoder=added,
        extra_special_tokens=[t for t in SPECIAL_TOKENS if t not in (ENDOFTEXT, eos_token)],
        model_max_length=model_max_length,
        padding_side=padding_side,
        clean_up_tokenization_spaces=False,
        errors="replace",
        split_special_tokens=False,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    expected = list(range(first_special, first_special + len(SPECIAL_TOKENS)))
    if ids != expected:
        raise RuntimeError(f"special tokens got ids {ids}, expected {expected}")
    return tokenizer


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Map each Qwen special token string to its id in `tokenizer` (configs are filled from this)."""
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    return dict(zip(SPECIAL_TOKENS, ids, strict=True))
