# heatlens on a CUDA runtime image. Build (records the commit, since .git stays out of the image):
#   docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t heatlens .
# A team: `compose.yaml` runs an MLflow server beside the trainer (artifacts proxied by the server).
# One container on its own: mount the working folder at the SAME path, so that the store's
# artifact paths (absolute) are valid on the host too, then `mlflow ui` / `heatlens-compare` there:
#   docker run --gpus all --shm-size=8g -v "$PWD:$PWD" -w "$PWD" -v heatlens-cache:/cache \
#     heatlens heatlens-train trainer=gpu
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    HEATLENS_CACHE=/cache

# git: runs started from a mounted checkout (with its .git) are tagged with its HEAD.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/heatlens

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

# The commit this image was built from: runs record it as tag git_commit (heatlens.tracking.git_commit).
ARG GIT_COMMIT=unknown
ENV HEATLENS_GIT_COMMIT=${GIT_COMMIT}

# Runs go to ./mlruns and ./outputs of the working folder: mount a host folder there (see above).
WORKDIR /runs
# Decoded-image / phantom cache, datasets (data.root=/data/...).
VOLUME ["/cache", "/data"]

# The default training job (phantom data, simple_cnn); any other command replaces it, e.g.
# `docker run ... heatlens heatlens-train trainer=gpu data=covid_radiography data.root=/data/covid`.
CMD ["heatlens-train"]
