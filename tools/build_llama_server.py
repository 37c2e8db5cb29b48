"""Build llama.cpp's ``llama-server`` (and a tiny random model) for the compatibility tests.

The llama.cpp sources come from the llama-cpp-python sdist on PyPI (the only registry reachable
here), which vendors them under ``vendor/llama.cpp``. The build takes minutes on 2 cores, so the
results live outside the checkout, keyed by the sdist version, and are reused when present:

    ~/.cache/openai-compat/llama-server-<version>/llama-server
    ~/.cache/openai-compat/llama-server-<version>/tiny-llama.gguf

usage: python tools/build_llama_server.py [--cache DIR] [--server-only]
                                                             (prints the cache directory)
Needs cmake and a C++ compiler; ``gguf`` and ``numpy`` for the model. ``--server-only`` builds
the server alone, with nothing but the standard library and pip: CI starts it in the
background before the main suite, whose packages the model's generator needs.

The server is compiled at ``-O1``: the tests run a tiny random model, whose answers take
milliseconds either way, while ``-O3`` costs the build most of its time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(
    os.environ.get("OPENAI_COMPAT_CACHE", Path.home() / ".cache" / "openai-compat")
)
_VOCAB = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"


def _tiny_llama_script() -> Path:
    """The shared generator beside the checkout, else the copy committed in tools/."""
    shared = REPO_ROOT.parent / "shared" / "tools" / "make_tiny_llama.py"
    return shared if shared.is_file() else REPO_ROOT / "tools" / "make_tiny_llama.py"


def _download_sdist(dest: Path) -> Path:
    existing = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if existing:
        return existing[-1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "llama-cpp-python",
            "-d",
            str(dest),
        ],
        check=True,
    )
    return sorted(dest.glob("llama_cpp_python-*.tar.gz"))[-1]


def _version(sdist: Path) -> str:
    return sdist.name.removeprefix("llama_cpp_python-").removesuffix(".tar.gz")


def build(cache: Path, *, server_only: bool = False) -> Path:
    """Return the cache directory holding ``llama-server`` and ``tiny-llama.gguf`` (only the
    server with ``server_only``)."""
    cache.mkdir(parents=True, exist_ok=True)
    sdist = _download_sdist(cache / "sdist")
    out = cache / f"llama-server-{_version(sdist)}"
    server = out / "llama-server"
    model = out / "tiny-llama.gguf"
    if server.is_file() and (server_only or model.is_file()):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=cache) as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        root = next(Path(tmp).glob("llama_cpp_python-*"))
        if not server_only and not model.is_file():
            subprocess.run(
                [
                    sys.executable,
                    str(_tiny_llama_script()),
                    str(root / _VOCAB),
                    str(model) + ".part",
                ],
                check=True,
            )
            os.replace(str(model) + ".part", model)
        if not server.is_file():
            src = root / "vendor" / "llama.cpp"
            build_dir = Path(tmp) / "build"
            subprocess.run(
                [
                    "cmake",
                    "-S",
                    str(src),
                    "-B",
                    str(build_dir),
                    "-DCMAKE_BUILD_TYPE=Release",
                    "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG",
                    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG",
                    "-DLLAMA_USE_PREBUILT_UI=OFF",
                    "-DLLAMA_BUILD_UI=OFF",
                    "-DLLAMA_OPENSSL=OFF",
                    "-DLLAMA_CURL=OFF",
                    "-DBUILD_SHARED_LIBS=OFF",
                    "-DGGML_NATIVE=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF",
                ],
                check=True,
            )
            subprocess.run(
                [
                    "cmake",
                    "--build",
                    str(build_dir),
                    "--target",
                    "llama-server",
                    "-j",
                    os.environ.get("LLAMA_BUILD_JOBS", "2"),
                ],
                check=True,
            )
            built = next(build_dir.rglob("llama-server"))
            shutil.copy2(built, str(server) + ".part")
            os.replace(str(server) + ".part", server)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--server-only", action="store_true", help="build llama-server alone")
    args = parser.parse_args()
    print(build(args.cache, server_only=args.server_only))


if __name__ == "__main__":
    main()
