# syntax=docker/dockerfile:1.7
# One image for the API and the worker (`rlsched api` / `rlsched worker`).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    RLSCHED_DATA_DIR=/data

WORKDIR /srv/rl-scheduler

# Dependencies first, so code changes do not reinstall torch and ray.
COPY pyproject.toml README.md ./
RUN mkdir -p app worker && touch app/__init__.py worker/__init__.py \
    && pip install ".[postgres]" \
    && pip uninstall -y rl-scheduler

COPY app ./app
COPY worker ./worker
COPY alembic ./alembic
COPY alembic.ini ./
RUN pip install --no-deps -e . && useradd --create-home --uid 10001 rlsched \
    && mkdir -p /data/checkpoints && chown -R rlsched /data

USER rlsched
VOLUME ["/data/checkpoints"]
EXPOSE 8000
CMD ["rlsched", "api", "--host", "0.0.0.0"]
