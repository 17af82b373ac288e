"""ganforensics: forensics of CNN-generated (GAN) images."""

__version__ = "0.1.0"
