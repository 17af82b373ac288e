"""DomainGAN in text (Corley et al. 2019): GAN-generated domain names against character-level
DGA classifiers, the image study's generate / bypass / harden protocol in another medium
(docs/text.md).

Modules: `encoding` (vocabulary, fixed-length ids), `corpus` (offline benign names from the
HSTS preload list, synthetic DGA-like generators, user lists), `nets` and `train` (text-CNN
autoencoder, the three GAN objectives of `ganforensics.gan.losses`), `classifiers` (bigram
logistic regression, LSTM, parallel CNN, CNN+LSTM), `metrics`, `pipeline` (the run folders of
`ganforensics dga`). The optional `text` extra (hstspreload, tldextract) is imported only by
the functions that need it.
"""
