"""Faces in an image: detection (MTCNN, Haar) with its cache, alignment to a canonical frame, framing measures, face regions from landmarks, and format matching between sets."""

from __future__ import annotations

from fercore.faces import regions
from fercore.faces.alignment import CanonicalFrame, align_image, align_map, alignment_matrix
from fercore.faces.detection import (
    LANDMARKS,
    Detection,
    Face,
    FaceDetector,
    FaceDetectorUnavailable,
    HaarFaces,
    MTCNNFaces,
    Preparation,
    detect_faces,
    make_face_detector,
    mtcnn_available,
)
from fercore.faces.framing import framing_measures, framing_stats, framing_table
from fercore.faces.matching import MatchedFormat, SetFormat, format_table, match_transform, matched_arms, measure_format
from fercore.faces.regions import COLOURS, REGIONS, TITLES, label_map, region_shares

__all__ = [
    "align_image",
    "align_map",
    "alignment_matrix",
    "CanonicalFrame",
    "COLOURS",
    "detect_faces",
    "Detection",
    "Face",
    "FaceDetector",
    "FaceDetectorUnavailable",
    "format_table",
    "framing_measures",
    "framing_stats",
    "framing_table",
    "HaarFaces",
    "label_map",
    "LANDMARKS",
    "make_face_detector",
    "match_transform",
    "matched_arms",
    "MatchedFormat",
    "measure_format",
    "mtcnn_available",
    "MTCNNFaces",
    "Preparation",
    "region_shares",
    "regions",
    "REGIONS",
    "SetFormat",
    "TITLES",
]
