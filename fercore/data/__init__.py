"""Images and samples: decoding (``images``), sample tables (``samples``), splits (``splits``), datasets and loaders (``loading``), pixel duplicates (``duplicates``) and data-set checks (``checks``)."""

from __future__ import annotations

from fercore.data.checks import check_data, write_report
from fercore.data.discovery import REASONS, Inventory, walk_data_root, walk_folder
from fercore.data.duplicates import DuplicateReport, drop_conflicting, drop_test_duplicates, pixel_hashes
from fercore.data.images import (
    EXACT_PREPROCESSING,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PREPROCESS_MODES,
    Preprocess,
    is_image_file,
    load_rgb,
    native_uint8,
    resize_batch,
    to_rgb,
)
from fercore.data.loading import FaceDataset, InputPipeline
from fercore.data.samples import (
    DatasetLayoutError,
    dataset_classes,
    discover,
    face_table,
    load_samples,
    manifest_hash,
    per_class_subset,
    within_classes,
)
from fercore.data.seen import NoUnseenFacesError, SeenSplit, parse_seen, seen_record, unseen_real_faces
from fercore.data.splits import (
    fixed_size_training_sets,
    gender_share,
    gender_training_sets,
    grouped_folds,
    grouped_split,
    max_folds,
    selection_split,
    split_by_gender,
)

__all__ = [
    "check_data",
    "dataset_classes",
    "DatasetLayoutError",
    "discover",
    "drop_conflicting",
    "drop_test_duplicates",
    "DuplicateReport",
    "EXACT_PREPROCESSING",
    "face_table",
    "FaceDataset",
    "fixed_size_training_sets",
    "gender_share",
    "gender_training_sets",
    "grouped_folds",
    "grouped_split",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Inventory",
    "InputPipeline",
    "is_image_file",
    "load_rgb",
    "load_samples",
    "manifest_hash",
    "max_folds",
    "native_uint8",
    "NoUnseenFacesError",
    "parse_seen",
    "per_class_subset",
    "pixel_hashes",
    "Preprocess",
    "REASONS",
    "PREPROCESS_MODES",
    "resize_batch",
    "seen_record",
    "SeenSplit",
    "selection_split",
    "split_by_gender",
    "to_rgb",
    "unseen_real_faces",
    "walk_data_root",
    "walk_folder",
    "within_classes",
    "write_report",
]
