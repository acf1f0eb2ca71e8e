"""Local stand-in servers (stdlib HTTP on 127.0.0.1) that speak the real Hugging Face protocols."""
