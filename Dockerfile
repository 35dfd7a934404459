# The sohoa image (workers and the web app): Debian with Tesseract (Vietnamese), Poppler and the project.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-vie tesseract-ocr-osd \
      poppler-utils fonts-liberation2 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY pipeline ./pipeline
COPY storage ./storage
COPY flows ./flows
COPY cli ./cli
COPY web ./web
RUN pip install --no-cache-dir -e . && python -m compileall -q cli pipeline models storage flows web
ENV OMP_THREAD_LIMIT=1 SOHOA_DATA_DIR=/data
VOLUME /data
CMD ["sohoa", "worker"]
