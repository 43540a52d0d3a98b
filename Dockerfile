# The worker/replay image for docker-compose.yml: runtime dependencies only (no TensorFlow).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY training ./training
COPY onnx_models ./onnx_models
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 finstream
# The worker needs no root: it only talks to Kafka and Redis and reads the models.
USER finstream
CMD ["finstream", "worker"]
