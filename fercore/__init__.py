"""fercore: facial-emotion-recognition research suite for real vs AI-generated faces.

One package per concern, lowest layer first; each package's ``__init__`` is its public door
(``__all__``), and a package imports only the ones above it in this list:

* :mod:`fercore.core`: files, config and overrides, runtime, progress, labels, provenance, audit, number formats
* :mod:`fercore.data`: images, sample tables, splits and loaders, pixel duplicates, data-set checks
* :mod:`fercore.models`: architectures, weight files, the classifier, ONNX export and runtime
* :mod:`fercore.faces`: detection and its cache, alignment, framing, face regions, format matching
* :mod:`fercore.analysis`: metrics, calibration, uncertainty, plots
* :mod:`fercore.inference`: the one inference pass, predictions, folder evaluation
* :mod:`fercore.grids`: grid layout, cell detection, quality checks, face extraction
* :mod:`fercore.synthetic`: prompts, generation plans, generator backends
* :mod:`fercore.explain`: class activation maps in face regions, embeddings
* :mod:`fercore.training`: training (SAM, staged unfreezing), cross-validation, gender splits
* :mod:`fercore.demo`: the embedded demo's faces and grids, and its pipeline
* :mod:`fercore.book`: a notebook's chapter, the suite runner, the book build
* :mod:`fercore.studies`: one module per research question, called by the notebooks

``tests/test_architecture.py`` checks the layering, the doors and the size limits from the source.
"""

__version__ = "0.1.0"
