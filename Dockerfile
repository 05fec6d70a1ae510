# Parley API image: gunicorn on PostgreSQL (set DATABASE_URL, SECRET_KEY, JWT_SECRET_KEY).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PARLEY_ENV=production \
    FLASK_APP=wsgi.py \
    PORT=8000

RUN useradd --create-home --uid 10001 parley
WORKDIR /srv/parley

# Dependencies first, so code changes reuse this layer.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=parley:parley app ./app
COPY --chown=parley:parley migrations ./migrations
COPY --chown=parley:parley config.py wsgi.py gunicorn.conf.py ./
COPY --chown=parley:parley scripts/boot.sh ./boot.sh
RUN chmod +x boot.sh && mkdir -p instance && chown parley:parley instance

USER parley
EXPOSE 8000
# boot.sh execs gunicorn, so gunicorn is PID 1 and gets this signal: it stops accepting, lets
# in-flight requests finish (GUNICORN_GRACEFUL_TIMEOUT, 30 s), answers waiting long-polls and
# ends event streams at once. Give `docker stop` that long: docker stop -t 35 (compose.yaml does).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"
ENTRYPOINT ["./boot.sh"]
