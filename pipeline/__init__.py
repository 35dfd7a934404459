"""Pure document processing: scan files in, cleaned pages, OCR words and searchable PDFs out."""
