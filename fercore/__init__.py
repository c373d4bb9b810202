"""fercore: facial-emotion-recognition research suite for real vs AI-generated faces."""

__version__ = "0.1.0"
