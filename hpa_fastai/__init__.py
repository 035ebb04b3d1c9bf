"""Protein localisation in Human Protein Atlas RGBY microscopy with fastai: 4-channel data, biological features, fused models.

Modules:

- `hpa_fastai.artifact`: One folder, `config.json` + `model.safetensors`, that holds everything needed to predict: written atomically, checked on loading (format, checksums, sense of every value) and never unpickled.
- `hpa_fastai.metrics`: F1 per class and macro-averaged, every kind of threshold (global, per class, frequency-matched, out of fold), per-class score tables and the scoring of a submission: numpy on arrays, depending on `core` alone.
- `hpa_fastai.predict`: `HPAPredictor`: the model artifact turned into labels for stems, arrays or whole folders, with TTA and any threshold set, keeping going past unreadable samples; and Kaggle submissions, written and checked."""

__version__ = "0.0.1"
