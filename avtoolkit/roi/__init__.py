"""Mouth regions of interest (``mouth_roi``): finding the mouth in video frames and cropping it.

:mod:`.crop` holds :class:`MouthCropper` (fixed box, face detector or 68-point landmarks)
and the on-disk cache :func:`mouth_rois`; :mod:`.load` :func:`load_mouth_rois` (a video file or
precomputed ``.npy``/``.npz`` crops); :mod:`.face` the Haar face detector and tracker;
:mod:`.detector` the landmark detector (MediaPipe face models, the ``landmarks`` extra),
:mod:`.align` and :mod:`.aligned` the alignment to a mean face, :mod:`.landmark_files` saved
landmarks (``.npy``, mpc001 ``.pkl``) and :mod:`.sheet` contact sheets.
"""

from avtoolkit.roi.crop import LRW_MOUTH_BOX, MouthCropper, mouth_rois
from avtoolkit.roi.face import detect_face, track_faces
from avtoolkit.roi.load import load_mouth_rois

__all__ = ["LRW_MOUTH_BOX", "MouthCropper", "detect_face", "load_mouth_rois", "mouth_rois", "track_faces"]
