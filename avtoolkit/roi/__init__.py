"""Mouth regions of interest (``mouth_roi``): finding the mouth in video frames and cropping it.

:mod:`.crop` holds :class:`MouthCropper` (fixed box, face detector or 68-point landmarks)
and the on-disk cache :func:`mouth_rois`; :mod:`.face` the face detector and tracker.
"""

from avtoolkit.roi.crop import LRW_MOUTH_BOX, MouthCropper, mouth_rois
from avtoolkit.roi.face import detect_face, track_faces

__all__ = ["LRW_MOUTH_BOX", "MouthCropper", "detect_face", "mouth_rois", "track_faces"]
