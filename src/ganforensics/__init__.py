"""ganforensics: forensics of CNN-generated (GAN) images."""

__version__ = "0.1.0"

REAL = 0
FAKE = 1
