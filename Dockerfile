# The stream-app worker image; docker-compose.yml runs it beside Kafka and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, against an empty package, so that a code change does not
# reinstall numpy, pandas and the rest.
COPY pyproject.toml ./
RUN mkdir stream_app && touch stream_app/__init__.py && pip install .

COPY stream_app ./stream_app
RUN pip install --no-deps --force-reinstall . \
    && useradd --create-home --uid 10001 app

USER app
EXPOSE 6066
CMD ["stream-app", "worker"]
