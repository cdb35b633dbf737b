# heatlens on a CUDA runtime image. Build: `docker build -t heatlens .`
# Run the default training job on one GPU, keeping MLflow runs and caches on the host:
#   docker run --gpus all --shm-size=8g -v "$PWD/mlruns:/workspace/heatlens/mlruns" \
#     -v heatlens-cache:/cache heatlens python train.py trainer=gpu
# Multi-GPU (one process per GPU, DDP): ... heatlens python train.py trainer=ddp trainer.devices=4
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    HEATLENS_CACHE=/cache

# git: runs are tagged with `git rev-parse HEAD` when the checkout's .git is mounted or copied.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /workspace/heatlens

# Dependencies first, so that editing the code does not reinstall them; the image's CUDA torch
# already satisfies `torch>=2.2` and is kept.
COPY pyproject.toml README.md ./
RUN mkdir -p src/heatlens \
    && touch src/heatlens/__init__.py \
    && pip install -e . \
    && pip uninstall -y heatlens

COPY . .
RUN pip install --no-deps -e . \
    && python -c "import heatlens.cli.train, heatlens.cli.compare"

# MLflow store (sqlite + artifacts), decoded-image / phantom cache, datasets (data.root=/data/...).
VOLUME ["/workspace/heatlens/mlruns", "/cache", "/data"]

# The default training job (phantom data, simple_cnn); any other command replaces it, e.g.
# `docker run ... heatlens python train.py trainer=gpu data=covid_radiography data.root=/data/covid`.
CMD ["python", "train.py"]
