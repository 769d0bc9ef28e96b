"""The one error type of age progression: a machine-readable code plus a message for people."""
from __future__ import annotations


class AgeProgressionError(ValueError):
    """Raised for any input the age progression cannot honour.

    Codes: ``invalid_image``, ``no_face``, ``multiple_faces``, ``face_index_out_of_range``, ``no_mesh``,
    ``invalid_age``, ``invalid_target_age``, ``invalid_sex``, ``invalid_family_photo``, ``invalid_parameter``.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
