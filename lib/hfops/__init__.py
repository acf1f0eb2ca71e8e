"""hfops: the Hugging Face free-tier operator console (library; importable without Streamlit)."""

__version__ = "0.1.0"
