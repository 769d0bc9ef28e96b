"""Index sets of MediaPipe's 478-point face mesh (Face Mesh with refine_landmarks=True: 468 mesh points, then 10 iris
points), the one copy shared by `biometrics` and `agepro`.

Source: MediaPipe's FACEMESH_* connection sets (mediapipe/python/solutions/face_mesh_connections.py) and its
canonical face model. "right"/"left" are the subject's, as in MediaPipe: the right eye is normally on the image's left.
"""

N_POINTS = 478

# The face silhouette as a closed polygon, FACEMESH_FACE_OVAL's edges walked in order from the top of the forehead
# towards the subject's right: counter-clockwise as seen on screen, so its shoelace area in image coordinates
# (y down) is negative.
FACE_OVAL = (
    10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148,
    152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338,
)  # fmt: skip

# Eye contours (the points of FACEMESH_RIGHT_EYE / FACEMESH_LEFT_EYE), sorted.
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362

# Irises: the centre, then the four rim points of FACEMESH_RIGHT_IRIS / FACEMESH_LEFT_IRIS.
RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER = 468, 473
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

# Midline, top to bottom. The mesh has no true trichion (hairline): its top forehead point stands in for it.
TRICHION = 10
GLABELLA = 9  # between the eyebrows
NASION = 168  # the depth of the nasal root, between the eyes
NOSE_TIP = 1
SUBNASALE = 2  # where the columella meets the upper lip (dlib's "nose base")
MENTON = 152  # lowest point of the chin

# Eyebrows (the points of FACEMESH_RIGHT_EYEBROW / FACEMESH_LEFT_EYEBROW), sorted.
RIGHT_EYEBROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LEFT_EYEBROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)

MOUTH_RIGHT, MOUTH_LEFT = 61, 291
RIGHT_CHEEK, LEFT_CHEEK = 234, 454  # the face oval's widest points
GONION_PAIR = (172, 397)  # the jaw outline at the level of the mandibular angles (right, left)
