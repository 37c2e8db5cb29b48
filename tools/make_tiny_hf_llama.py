"""Build a tiny, randomly initialised llama model in the Hugging Face format, offline.

``transformers serve`` in the compatibility tier runs it: 2 layers, 64 dimensions, a few
hundred tokens, about 0.5 MB. Nothing comes from the Hugging Face hub (this machine reaches
only package registries): the tokenizer is a byte-level BPE trained here, with the
``tokenizers`` library, on a few ASCII sentences, so that every token decodes to ASCII and a
streamed answer's text is the whole answer's text; the chat template is a plain one. Its
weights are seeded: the text is gibberish, the same at every build and every greedy answer.

The model is written once into ``~/.cache/openai-compat/tiny-hf-llama-<N>/``
(``OPENAI_COMPAT_CACHE`` moves it, ``--cache`` too) and reused; its path is printed.

usage: python tools/make_tiny_hf_llama.py [--cache DIR]
Needs torch, transformers and tokenizers (the ``tfserve`` extra's environment).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

DEFAULT_CACHE = Path(
    os.environ.get("OPENAI_COMPAT_CACHE", Path.home() / ".cache" / "openai-compat")
)
# Bumped whenever what is built changes, so that a stale cached model is not reused.
_FORMAT = 1
_TEXT = (
    "The quick brown fox jumps over the lazy dog. Say hello to the world. "
    "A user asks and the assistant answers: hello, hi, yes, no, maybe, thanks. "
    "Classify this ticket: the printer is on fire, please help 0123456789."
)
_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _write(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # No initial alphabet: the vocabulary holds only the bytes of the ASCII text above.
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<unk>", "<s>", "</s>"])
    tokenizer.train_from_iterator([_TEXT] * 8, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.chat_template = _TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.do_sample = False
    model.save_pretrained(out)


def build(cache: Path) -> Path:
    """Return the directory of the tiny model, built into ``cache`` unless already there."""
    out = cache / f"tiny-hf-llama-{_FORMAT}"
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    # Built aside and moved in whole: an interrupted build leaves no half model behind.
    with tempfile.TemporaryDirectory(prefix="tiny-hf-llama-", dir=cache) as tmp:
        part = Path(tmp) / "model"
        _write(part)
        shutil.rmtree(out, ignore_errors=True)
        part.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    print(build(parser.parse_args().cache))


if __name__ == "__main__":
    main()
