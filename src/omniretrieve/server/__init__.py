"""The HTTP server: Jina / OpenAI / Cohere compatible embeddings and rerank endpoints."""
