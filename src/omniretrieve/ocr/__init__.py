"""Reading text out of images (page screenshots, scans, PDF pages without a text layer)."""
