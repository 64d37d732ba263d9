"""Turning files into documents: images and PDF pages (text layer first, OCR where needed)."""
